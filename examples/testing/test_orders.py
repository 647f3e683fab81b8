"""Testing an agent with pytest, without a broker: ``pytest`` in this folder.

``test_context()`` runs the agent in the test's event loop; ``put()`` returns once the
agent is done with the value (through ``group_by`` too).
"""

from orders import Order, add_orders, totals


async def test_totals_per_account():
    async with add_orders.test_context() as agent:
        first = await agent.put(Order(account='a', amount=3))
        second = await agent.put(Order(account='a', amount=4))
        await agent.put(Order(account='b', amount=1))
        assert agent.results[first.message.offset] == 3
        assert agent.results[second.message.offset] == 7
        assert totals['a'] == 7 and totals['b'] == 1


async def test_a_bad_order_is_given_up_on_after_its_retries():
    async with add_orders.test_context() as agent:
        await agent.put(Order(account='a', amount=-1))
        [(event, error)] = agent.dead_letters
        assert event.value.amount == -1 and isinstance(error, ValueError)
