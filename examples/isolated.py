"""Isolated partitions: one copy of the agent per partition, each with its own state.

Each copy keeps a running total of the partition it reads, in a plain local variable:
no other copy touches it, and the copy stops when its partition moves to another
worker. Run a worker::

    python isolated.py worker -l info
"""

import random

import faust

app = faust.App('isolated', topic_partitions=4)
payments = app.topic('payments', key_type=str, value_type=int)


@app.agent(payments, isolated_partitions=True)
async def running_total(stream):
    total = 0
    async for event in stream.events():
        total += event.value
        print(f'partition {event.message.partition}: total {total}')
        yield (event.message.partition, total)


@app.timer(interval=0.5)
async def send_sample_payments():
    await payments.send(key=f'account-{random.randint(1, 8)}', value=random.randint(1, 100))


if __name__ == '__main__':
    app.main()
