"""``faust send`` on real Kafka: records land where it says, mistakes fail in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]

SHOP = """
import faust

class Order(faust.Record):
    item: str
    quantity: int = 1

app = faust.App({app_id!r})
orders = app.topic({topic!r}, key_type=str, value_type=Order, partitions=4)

@app.agent(orders)
async def process(stream):
    async for order in stream:
        print(order)
"""


def _faust(project: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["FAUST_BROKER"] = f"kafka://{bootstrap}"
    return subprocess.run(
        [sys.executable, "-m", "faust", "-A", "shop", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _read(bootstrap: str, topic: str, partition: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batches = await consumer.getmany(tp, timeout_ms=10_000)
        return [(m.key, m.value) for m in batches.get(tp, [])]
    finally:
        await consumer.stop()


async def test_send_declares_the_topic_and_checks_the_partition(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"it-cli-orders-{uuid.uuid4().hex[:10]}"
    (tmp_path / "shop.py").write_text(
        textwrap.dedent(SHOP.format(app_id=f"it-cli-{uuid.uuid4().hex[:8]}", topic=topic))
    )
    sent = _faust(
        tmp_path,
        kafka_bootstrap,
        "--json",
        "send",
        topic,
        '{"item": "apple"}',
        "-p",
        "3",
        "-r",
        "2",
    )
    assert sent.returncode == 0, sent.stderr
    rows = json.loads(sent.stdout)
    assert [(r["topic"], r["partition"], r["offset"]) for r in rows] == [
        (topic, 3, 0),
        (topic, 3, 1),
    ]
    # Declared with the app's partition count (4), not the broker's default.
    missing = _faust(tmp_path, kafka_bootstrap, "send", topic, '{"item": "pear"}', "-p", "99")
    assert missing.returncode == 2, missing.stderr
    assert "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        f"faust: error: --partition 99: topic {topic!r} has 4 partition(s), numbered 0 to 3."
    )
    agent = _faust(tmp_path, kafka_bootstrap, "send", "@process", '{"item": "fig"}', "-k", "k1")
    assert agent.returncode == 0, agent.stderr
    assert f"sent to {topic}[" in agent.stdout
    records = await _read(kafka_bootstrap, topic, 3)
    assert [json.loads(value)["item"] for _, value in records] == ["apple", "apple"]


KEYED = """
import faust

class Order(faust.Record, namespace="shop.Order"):
    item: str
    quantity: int = 1

class Customer(faust.Record, namespace="shop.Customer"):
    id: str

app = faust.App({app_id!r})
orders = app.topic({topic!r}, partitions=1)
"""


async def test_send_with_key_and_value_types_serializers_and_latency(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    import base64
    import time

    topic = f"it-cli-typed-{uuid.uuid4().hex[:10]}"
    (tmp_path / "shop.py").write_text(
        textwrap.dedent(KEYED.format(app_id=f"it-cli-{uuid.uuid4().hex[:8]}", topic=topic))
    )
    started = time.monotonic()
    sent = _faust(
        tmp_path,
        kafka_bootstrap,
        "send",
        topic,
        '{"item": "plum", "quantity": 3}',
        "-V",
        "Order",
        "--value-serializer",
        "json|binary",
        "-K",
        "shop.Customer",
        "-k",
        '{"id": "c1"}',
        "--repeat",
        "3",
        "--min-latency",
        "0.3",
        "--max-latency",
        "0.4",
        "--json",
    )
    elapsed = time.monotonic() - started
    assert sent.returncode == 0, sent.stderr
    assert [r["offset"] for r in json.loads(sent.stdout)] == [0, 1, 2]
    assert elapsed >= 0.6  # two waits between three sends
    records = await _read(kafka_bootstrap, topic, 0)
    assert len(records) == 3
    key, value = records[0]
    assert json.loads(key) == {"id": "c1", "__faust": {"ns": "shop.Customer"}}
    assert json.loads(base64.b64decode(value)) == {
        "item": "plum",
        "quantity": 3,
        "__faust": {"ns": "shop.Order"},
    }
