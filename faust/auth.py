"""Credentials for brokers that require authentication or TLS.

Example::

    app = faust.App(
        'orders',
        broker='kafka://broker.example.com:9093',
        broker_credentials=faust.SASLCredentials(
            username='orders', password=os.environ['KAFKA_PASSWORD'], mechanism='SCRAM-SHA-256'
        ),
    )
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Credentials", "SASLCredentials", "SSLCredentials"]

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class Credentials:
    """Base class: what the Kafka driver passes to its clients."""

    def client_options(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class SASLCredentials(Credentials):
    """SASL username and password (PLAIN or SCRAM); over TLS when ``ssl_context`` is set."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "PLAIN"
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        mechanism = self.mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(
                f"SASL mechanism {self.mechanism!r} is not supported: use one of "
                f"{', '.join(SASL_MECHANISMS)}."
            )
        self.mechanism = mechanism

    def client_options(self) -> dict[str, Any]:
        return {
            "security_protocol": "SASL_SSL" if self.ssl_context else "SASL_PLAINTEXT",
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            "ssl_context": self.ssl_context,
        }


@dataclass
class SSLCredentials(Credentials):
    """TLS (optionally with a client certificate) from an ``ssl.SSLContext``.

    Example::

        context = ssl.create_default_context(cafile='ca.pem')
        context.load_cert_chain('client.pem', 'client.key')
        faust.SSLCredentials(context)
    """

    context: ssl.SSLContext

    def client_options(self) -> dict[str, Any]:
        return {"security_protocol": "SSL", "ssl_context": self.context}
