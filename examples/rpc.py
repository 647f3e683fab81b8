"""Request and reply: ask an agent for a result, one value or many at once.

``python rpc.py`` runs the app in this process on the embedded broker, asks the agent
and prints the answers. With Kafka (``broker='kafka://...'``), a worker
(``python rpc.py worker``) answers any process that asks.
"""

import asyncio

import faust


class Add(faust.Record):
    a: int
    b: int


app = faust.App('rpc')


@app.agent()
async def adder(stream):
    async for add in stream:
        yield add.a + add.b          # the reply to whoever asked


async def demo() -> None:
    async with app:
        print('ask:', await adder.ask(Add(a=1, b=2)))
        print('map:', [total async for total in adder.map([Add(a=i, b=i) for i in range(4)])])
        print('kvmap:', await adder.kvmap({'x': Add(a=10, b=1), 'y': Add(a=20, b=2)}))
        print('join:', await adder.join([Add(a=5, b=5), Add(a=6, b=6)]))


if __name__ == '__main__':
    import sys

    if len(sys.argv) > 1:
        app.main()
    else:
        asyncio.run(demo())
