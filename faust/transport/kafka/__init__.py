"""Apache Kafka through aiokafka: the driver behind ``broker='kafka://host:9092'``.

Example::

    app = faust.App('orders', broker='kafka://k1:9092;kafka://k2:9092')

The driver moves bytes and nothing more: the consumer fetches batches and commits what
the layers above say is processed (auto-commit is off), the producer returns a future
per record that resolves on the broker's ack, and the admin client declares topics.

- ``transport.py``: URLs, the first connect (bounded, refused logins reported at once),
  topic declarations, leader election.
- ``consumer.py``: a consumer group member over ``AIOKafkaConsumer``.
- ``producer.py``: acked sends over ``AIOKafkaProducer``.
- ``reader.py``: reading a partition outside the group (table recovery, standbys).
- ``groups.py``: a consumer group seen from outside (``faust status``).

The transport's first contact with the cluster waits at most ``broker_connect_timeout``
seconds (default 30) and then fails with one line naming the URLs, so a worker pointed
at a broker that is down stops with a clear error instead of hanging; a login the
brokers refuse (``broker_credentials``) fails at once.

aiokafka's metadata requests make a broker with ``auto.create.topics.enable`` create a
missing topic with the broker's partition count, so before the first send to, or
subscription of, a topic it has not seen, a client waits briefly for it to exist (a
declaration in progress) and warns if it does not.

Leader election for ``on_leader`` timers uses the consumer group: every worker's
consumer also subscribes to the one-partition topic ``{app.id}-__leader``, and the
worker assigned its partition 0 is the leader (see :meth:`KafkaTransport.is_leader`).
"""

from .consumer import KafkaConsumer
from .producer import KafkaProducer
from .transport import (
    BrokerUnreachable,
    KafkaTransport,
    LoginRefused,
    bootstrap_servers,
    topic_config,
)

__all__ = [
    "KafkaTransport",
    "KafkaConsumer",
    "KafkaProducer",
    "BrokerUnreachable",
    "LoginRefused",
    "bootstrap_servers",
    "topic_config",
]
