"""Passing a web request on to the worker that owns its key, and its answer back.

One :class:`Forwarder` per app holds one ``aiohttp.ClientSession`` (its connection pool),
made on the first forward and closed when the app stops. A forwarded request carries
:data:`FORWARDED_BY`, naming the worker that passed it on: the owner serves it or
answers 503, and never forwards it again (during a rebalance two workers could each
believe the other owns a partition, and pass a request between them for ever).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import views

__all__ = ["FORWARDED_BY", "SERVED_BY", "Forwarder", "error_response"]

logger = logging.getLogger(__name__)

#: Request header of a forwarded request: the URL of the worker that forwarded it.
FORWARDED_BY = "X-Faust-Forwarded-By"
#: Response header of a routed request: the URL of the worker that served it.
SERVED_BY = "X-Faust-Served-By"

#: Seconds a forwarded request may take, answer included. Reading a table takes
#: milliseconds; this bounds what a client waits when the owner hangs.
FORWARD_TIMEOUT = 10.0
#: Seconds to connect to the owner: a worker that died on another host makes a
#: connect hang (no refusal comes back), and the group takes a session timeout to notice.
CONNECT_TIMEOUT = 3.0

# Headers about one hop (RFC 9110 section 7.6.1), or that aiohttp sets itself from the
# body it sends (and decompresses on receipt; the body is read whole, so no 100-continue):
# never copied to the next hop.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "expect",
    }
)


def error_response(status: int, reason: str, **fields: Any) -> web.Response:
    """The JSON error of a route: ``{"error": reason, ...fields}``; a 503 says when to
    ask again (``Retry-After``)."""
    headers = {"Retry-After": "1"} if status == 503 else None
    return views.error_response(status, reason, headers=headers, **fields)


class Forwarder:
    """Sends a request to another worker and gives its response back as it came."""

    def __init__(self, timeout: float = FORWARD_TIMEOUT) -> None:
        #: Seconds a forward may take (``app.router.forwarder.timeout = 30`` for slow views).
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def forward(
        self, request: web.Request, url: str, forwarded_by: str, **fields: Any
    ) -> web.Response:
        """``request`` sent to the worker at ``url`` (same method, path, query, body
        and headers, plus :data:`FORWARDED_BY` saying ``forwarded_by``); a 502 or 504
        naming ``url`` (and ``fields``) when it cannot answer in time."""
        target = url.rstrip("/") + request.raw_path
        headers = _copy(request.headers)
        headers[FORWARDED_BY] = forwarded_by
        body = await request.read()
        try:
            async with self._client().request(
                request.method,
                target,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=CONNECT_TIMEOUT),
            ) as response:
                data = await response.read()
        except TimeoutError:
            return error_response(
                504,
                f"The worker at {url} that owns this key did not answer in time (connect "
                f"within {CONNECT_TIMEOUT:g} s, answer within {self.timeout:g} s).",
                url=url,
                **fields,
            )
        except aiohttp.ClientError as exc:
            logger.warning("Could not forward %s %s to %s: %r", request.method, target, url, exc)
            return error_response(
                502,
                f"Could not reach the worker at {url} that owns this key: {exc}. It may have "
                f"stopped; once the group rebalances another worker answers.",
                url=url,
                **fields,
            )
        return web.Response(status=response.status, body=data, headers=_copy(response.headers))

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            # Headers go on as they came: no cookie jar of the forwarder's own.
            session = self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True
            )
        return session

    async def close(self) -> None:
        """Close the connection pool (a later forward opens a new one)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
            # Lets the connector's transports finish closing before the loop moves on.
            await asyncio.sleep(0)


def _copy(headers: Any) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_HEADERS)
