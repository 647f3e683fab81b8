"""A service: a long-running part of the worker with its own start, stop and tasks.

Here a price feed: it polls a (pretend) price source in a background task, reports
every few seconds in a timer, and sends every price to a topic an agent reads. Run a
worker and stop it with Ctrl-C (the service stops with it)::

    python service.py worker -l info
"""

import random

import faust


class Price(faust.Record):
    symbol: str
    price: float


app = faust.App('prices')
prices = app.topic('prices', key_type=str, value_type=Price)
latest = app.Table('latest-prices', default=float)


@app.service
class PriceFeed(faust.Service):
    """Polls the price source until the worker stops."""

    async def on_start(self):
        self.polled = 0
        self.log.info('price feed starting')

    @faust.Service.task
    async def _poll(self):
        while not self.should_stop:
            symbol = random.choice(['ACME', 'INITECH'])
            price = round(random.uniform(10, 20), 2)
            await prices.send(key=symbol, value=Price(symbol=symbol, price=price))
            self.polled += 1
            await self.sleep(0.2)              # returns at once when the worker stops

    @faust.Service.timer(1.0)
    async def _report(self):
        self.log.info('polled %d prices', self.polled)

    async def on_stop(self):
        self.log.info('price feed stopped after %d prices', self.polled)


@app.agent(prices)
async def keep_latest(stream):
    async for price in stream:
        latest[price.symbol] = price.price


if __name__ == '__main__':
    app.main()
