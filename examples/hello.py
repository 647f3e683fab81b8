"""The hello app: an agent greets, a timer sends it a greeting every second.

    python hello.py               # or: faust -A hello worker -l info
"""

import faust


class Greeting(faust.Record):
    from_name: str
    to_name: str


app = faust.App('hello-app')
topic = app.topic('hello-topic', value_type=Greeting)


@app.actor(topic)
async def hello(greetings):
    async for greeting in greetings:
        print(f'Hello from {greeting.from_name} to {greeting.to_name}')


@app.timer(interval=1.0)
async def example_sender(app):
    await hello.send(value=Greeting(from_name='Faust', to_name='you'))


if __name__ == '__main__':
    app.start_worker()
