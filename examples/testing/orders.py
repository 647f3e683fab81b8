"""An agent to test: it keeps each account's order total in a table and yields it."""

import faust


class Order(faust.Record):
    account: str
    amount: int


app = faust.App('orders-testing')
orders = app.topic('orders', value_type=Order)
totals = app.Table('order-totals', default=int)


@app.agent(orders)
async def add_orders(stream):
    async for order in stream.group_by(Order.account):
        if order.amount <= 0:
            raise ValueError(f'order of {order.amount} for {order.account}')
        totals[order.account] += order.amount
        yield totals[order.account]
