"""A web server that leaves the costly work to Faust workers.

The aiohttp server below is not a worker: it starts the app as a client
(``app.start_client()``: a producer, and a reply topic once it first asks), so a request
handler can send an order to the ``orders`` topic and, if it wants the result, ask the
agent for it. The agent runs in ``faust worker`` processes, as many as the load needs,
on other machines if you like; the web process stays small and quick.

Run it against Kafka (``scripts/kafka up`` in a clone of Faust starts one on
localhost:9092; ``FAUST_BROKER=kafka://host:port`` names another), from this directory:

    faust -A web_client worker -l info          # the agent, in its own process(es)
    python web_client.py --port 8080            # the web server (not a worker)

    curl -X POST localhost:8080/orders/ -d '{"item": "book", "quantity": 3, "unit_price": 12.5}'
    # {"item": "book", "quantity": 3, "total": 33.75, "handled_by": 4242}   (a worker's pid)
    curl -X POST localhost:8080/orders/later/ -d '{"item": "pen", "quantity": 1, "unit_price": 2}'
    # {"topic": "web-client-orders", "partition": 1, "offset": 0}           (202: queued)

``POST /orders/`` waits for the agent's reply (504 when no worker answers in time);
``POST /orders/later/`` only sends the order and answers 202 at once. A body that is not
an order gets a 400 that says what is wrong.
"""

import argparse
import asyncio
import json
import os

from aiohttp import web

import faust

#: How long a request waits for a worker's answer.
ASK_TIMEOUT = 10.0


class Order(faust.Record, validation=True, coerce=True):
    item: str
    quantity: int
    unit_price: float


app = faust.App(
    'web-client-example',
    broker=os.environ.get('FAUST_BROKER', 'kafka://localhost:9092'),
    topic_partitions=4,
)
orders = app.topic('web-client-orders', key_type=str, value_type=Order)


@app.agent(orders)
async def process_order(stream):
    """The costly part: runs in the worker process, never in the web server."""
    async for order in stream:
        await asyncio.sleep(0.01)  # a database, a model, a payment service...
        total = order.quantity * order.unit_price
        if order.quantity >= 3:
            total *= 0.9  # a volume discount
        print(f'Processed order: {order.quantity} x {order.item} = {total:.2f}')
        yield {
            'item': order.item,
            'quantity': order.quantity,
            'total': round(total, 2),
            'handled_by': os.getpid(),
        }


# -- the web server ----------------------------------------------------------------------


async def _read_order(request: web.Request) -> Order:
    try:
        data = await request.json()
    except ValueError:
        raise _bad_request('the body is not JSON') from None
    if not isinstance(data, dict):
        raise _bad_request('the body must be a JSON object')
    try:
        return Order.from_data(data)
    except (TypeError, ValueError) as exc:
        raise _bad_request(str(exc)) from None


def _bad_request(reason: str) -> web.HTTPBadRequest:
    example = {'item': 'book', 'quantity': 3, 'unit_price': 12.5}
    body = json.dumps({'error': reason, 'example': example})
    return web.HTTPBadRequest(text=body, content_type='application/json')


async def order_now(request: web.Request) -> web.Response:
    """Send the order to the agent and answer with its result."""
    order = await _read_order(request)
    try:
        receipt = await process_order.ask(order, key=order.item, timeout=ASK_TIMEOUT)
    except TimeoutError:
        return web.json_response(
            {'error': f'no worker answered within {ASK_TIMEOUT:g} s: is '
                      '`faust -A web_client worker` running?'},
            status=504,
        )
    return web.json_response(receipt)


async def order_later(request: web.Request) -> web.Response:
    """Send the order to the topic and answer at once; a worker processes it later."""
    order = await _read_order(request)
    sent = await orders.send(key=order.item, value=order)
    return web.json_response(
        {'topic': sent.topic, 'partition': sent.partition, 'offset': sent.offset},
        status=202,
    )


async def faust_client(web_app: web.Application):
    """Start the Faust app as a client with the web server, and stop it with it (which
    deletes the reply topic it made)."""
    await app.start_client()
    yield
    await app.stop()


def create_web_app() -> web.Application:
    web_app = web.Application()
    web_app.router.add_post('/orders/', order_now)
    web_app.router.add_post('/orders/later/', order_later)
    web_app.cleanup_ctx.append(faust_client)
    return web_app


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='The web server of the web_client example.')
    parser.add_argument('--host', default='localhost')
    parser.add_argument('--port', type=int, default=8080)
    args = parser.parse_args()
    web.run_app(create_web_app(), host=args.host, port=args.port)
