"""``agent.test_context()``: an agent run in a test without a worker or a broker, as
Faust's testing guide uses it (group_by, tables, windowed tables, results)."""

from __future__ import annotations

import asyncio

import faust
from faust.transport.memory import MemoryTransport


class Order(faust.Record, serializer="json"):
    account_id: str
    product_id: str
    amount: int
    price: float


def _order(account_id: str = "1", amount: int = 1) -> Order:
    return Order(account_id=account_id, product_id="2", amount=amount, price=300.0)


async def test_a_table_counted_through_group_by_is_updated_when_put_returns(
    app: faust.App,
) -> None:
    """The guide's first example: count orders per account after a group_by."""
    orders_topic = app.topic("orders", value_type=Order)
    orders_for_account = app.Table("order-count-by-account", default=int)

    @app.agent(orders_topic)
    async def order(orders):
        async for order in orders.group_by(Order.account_id):
            orders_for_account[order.account_id] += 1
            yield order

    async with order.test_context() as agent:
        first = await agent.put(_order())
        assert orders_for_account["1"] == 1
        assert agent.results == {first.message.offset: _order()}
        # Put on another partition: after group_by the same account counts in one place.
        second = await agent.put(_order(), partition=3)
        assert orders_for_account["1"] == 2
        assert agent.results[second.message.offset] == _order()
        assert len(agent.results) == 2
    assert not app.started


async def test_results_are_keyed_by_the_offset_put_returned_through_repartitions(
    app: faust.App,
) -> None:
    middle = app.topic("priced", value_type=Order)

    @app.agent(value_type=Order)
    async def total(orders):
        grouped = orders.group_by(Order.account_id).through(middle)
        async for order in grouped.group_by(lambda o: o.product_id, name="by-product"):
            yield order.amount * order.price

    async with total.test_context() as agent:
        events = [await agent.put(_order(str(i), amount=i)) for i in range(3)]
        assert agent.results == {e.message.offset: i * 300.0 for i, e in enumerate(events)}
        # Nothing went to a broker: the repartitions ran in the test's process.
        transport = app.transport
        assert isinstance(transport, MemoryTransport)
        assert "priced" not in transport.broker.logs


async def test_an_agent_that_does_not_yield_records_each_processed_event_as_none(
    app: faust.App,
) -> None:
    seen: list[int] = []

    @app.agent(value_type=int)
    async def store(stream):
        async for value in stream.filter(lambda v: v >= 0):
            seen.append(value)

    async with store.test_context() as agent:
        kept = await agent.put(5)
        dropped = await agent.put(-1)  # filtered out: processed, nothing to show
        assert agent.results == {kept.message.offset: None, dropped.message.offset: None}
        assert seen == [5]


async def test_an_agent_that_does_not_yield_through_group_by_records_none(
    app: faust.App,
) -> None:
    per_account = app.Table("amounts", default=int)

    @app.agent(value_type=Order)
    async def add(orders):
        async for order in orders.group_by(Order.account_id):
            per_account[order.account_id] += order.amount

    async with add.test_context() as agent:
        event = await agent.put(_order("7", amount=4))
        assert agent.results == {event.message.offset: None}
        assert per_account["7"] == 4


async def test_events_given_up_on_have_no_result(app: faust.App) -> None:
    @app.agent(value_type=int, retries=0, on_error="skip")
    async def strict(stream):
        async for value in stream.group_by(lambda v: v % 2, name="parity"):
            if value < 0:
                raise ValueError(f"negative: {value}")

    async with strict.test_context() as agent:
        bad = await agent.put(-3)
        good = await agent.put(4)
        assert agent.results == {good.message.offset: None}
        assert bad.message.offset not in agent.results


async def test_an_agent_tested_alone_gets_each_value(app: faust.App) -> None:
    """The guide's second example: an agent tested in isolation from its callers."""

    @app.agent()
    async def shout(stream):
        async for value in stream:
            yield value + "YOLO"

    async with shout.test_context() as agent:
        event = await agent.put("hey")
        assert agent.results[event.message.offset] == "heyYOLO"


async def test_an_agent_that_sends_to_another_agent(app: faust.App) -> None:
    """The guide's second example, caller side: what the agent sends reaches the other
    agent's topic (here for real, on the embedded broker, not through a mock)."""

    @app.agent()
    async def bar(stream):
        async for value in stream:
            yield value + "YOLO"

    @app.agent()
    async def foo(stream):
        async for value in stream:
            await bar.send(value=value)
            yield value

    async with foo.test_context() as agent:
        event = await agent.put("hey")
        assert agent.results[event.message.offset] == "hey"
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    [entry] = [e for log in transport.broker.logs[bar.channel.name] for e in log]
    assert bar.channel.schema.loads_value(entry[2]) == "hey"


async def test_a_windowed_table_is_read_relative_to_the_event_put(app: faust.App) -> None:
    """The guide's windowed example: the window of the event put, and one hours before."""
    orders_for_account = app.Table("hourly-orders", default=int).tumbling(3600).relative_to_stream()

    @app.agent(value_type=Order)
    async def process_order(orders):
        async for order in orders.group_by(Order.account_id):
            orders_for_account[order.account_id] += 1
            yield order

    async with process_order.test_context() as agent:
        event = await agent.put(_order())
        assert orders_for_account["1"].current(event) == 1
        # Three hours before this event's window, there were no orders.
        assert orders_for_account["1"].delta(3600 * 3, event) == 0
        event = await agent.put(_order())
        assert orders_for_account["1"].current(event) == 2


async def test_the_readme_tour_agent_under_test_context(app: faust.App) -> None:
    """The README's testing snippet: filter, group_by, yield."""

    class Purchase(faust.Record, serializer="json"):
        account: str
        amount: int

    orders = app.topic("shop-orders", key_type=str, value_type=Purchase)

    @app.agent(orders, concurrency=1)
    async def large_orders(stream):
        async for order in stream.filter(lambda o: o.amount > 100).group_by(Purchase.account):
            yield order.amount

    async with large_orders.test_context() as agent:
        event = await agent.put(Purchase(account="a", amount=1000))
        assert agent.results[event.message.offset] == 1000
        small = await agent.put(Purchase(account="a", amount=5))
        assert agent.results[small.message.offset] is None


async def test_an_event_that_keeps_raising_after_group_by_is_given_up_on(
    app: faust.App,
) -> None:
    """Its retries are counted (it once went round the repartition forever)."""
    calls: list[int] = []

    @app.agent(app.topic("gb-fails", value_type=int), retries=2)
    async def failing(stream):
        async for value in stream.group_by(lambda v: v, name="gb-fails-by-value"):
            calls.append(value)
            raise ValueError(f"bad {value}")
            yield value

    async with failing.test_context() as agent:
        await asyncio.wait_for(agent.put(5), 10)
        [(event, error)] = agent.dead_letters
        assert event.value == 5 and isinstance(error, ValueError)
    assert calls == [5, 5, 5]


async def test_test_context_with_a_channel_reads_it_too(app: faust.App) -> None:
    """Faust's test_context(channel=...): values sent to the channel reach the agent."""
    channel = app.channel()

    @app.agent()
    async def double(stream):
        async for value in stream:
            yield value * 2

    async with double.test_context(channel=channel) as agent:
        await channel.send(value=5)
        await agent.put(1)
        await asyncio.wait_for(_until(lambda: len(agent.output) == 2), 5)
        assert sorted(agent.output) == [2, 10]
        assert agent.agent is not double and agent.agent.channel is channel


async def test_test_context_with_another_on_error_and_supervisor(app: faust.App) -> None:
    @app.agent(on_error="stop", retries=0)
    async def fragile(stream):
        async for value in stream:
            if value < 0:
                raise ValueError(value)
            yield value

    async with fragile.test_context(
        on_error="dead_letter", supervisor_strategy=faust.agents.OneForAllSupervisor
    ) as agent:
        await agent.put(-1)
        await agent.put(3)
        assert agent.output == [3]
        assert [event.value for event, _ in agent.dead_letters] == [-1]
        assert agent.agent.info()["supervisor_strategy"] == "one_for_all"
    assert fragile.on_error == "stop"  # the declared agent is unchanged


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.005)
