"""CORS (cross-origin requests from browsers) for the worker's views.

Options map an origin (or ``'*'`` for any) to what a page at that origin may do, as
aiohttp-cors spells them::

    app = faust.App('shop', web_cors_options={
        'https://shop.example.com': {'allow_credentials': True, 'allow_headers': '*'},
        '*': {'allow_methods': ['GET']},
    })

    @app.page('/orders/', cors_options={'*': {'allow_methods': '*'}})  # this view only
    async def orders(self, request): ...

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) gets 200 with the
``Access-Control-Allow-*`` headers, or 403 with a JSON reason; a request from an allowed
origin gets ``Access-Control-Allow-Origin`` (and the rest) on its response, errors
included. Requests from other origins get no CORS headers, so the browser blocks them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson
from aiohttp import hdrs, web

__all__ = ["CorsOptions", "Cors", "check_cors_options"]

# Response headers a browser exposes to scripts anyway (the CORS "safelisted" ones).
_SAFELISTED = {
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
}


@dataclass(frozen=True)
class CorsOptions:
    """What pages of one origin may do: ``'*'`` for any, or a list of names.

    >>> CorsOptions(allow_methods=['get']).allows_method('GET')
    True
    """

    #: Cookies and HTTP authentication may be sent (``Access-Control-Allow-Credentials``).
    allow_credentials: bool = False
    #: Response headers scripts may read beyond the safelisted ones.
    expose_headers: str | tuple[str, ...] = ()
    #: Request headers a page may send beyond the safelisted ones.
    allow_headers: str | tuple[str, ...] = ()
    #: Methods a page may use (``'*'``: every method the view has).
    allow_methods: str | tuple[str, ...] = "*"
    #: Seconds a browser may cache a preflight's answer.
    max_age: int | None = None

    def __post_init__(self) -> None:
        # Names compare case-insensitively: methods upper case, headers lower case.
        set_ = object.__setattr__  # (frozen)
        if not isinstance(self.allow_credentials, bool):
            raise TypeError(
                f"allow_credentials must be True or False, not {self.allow_credentials!r}"
            )
        set_(self, "expose_headers", _names(self.expose_headers, "expose_headers"))
        set_(self, "allow_headers", _names(self.allow_headers, "allow_headers"))
        set_(self, "allow_methods", _names(self.allow_methods, "allow_methods", upper=True))
        max_age = self.max_age
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
        ):
            raise ValueError(f"max_age must be seconds >= 0, not {max_age!r}")

    def allows_method(self, method: str) -> bool:
        return self.allow_methods == "*" or method.upper() in self.allow_methods

    def refused_headers(self, headers: Collection[str]) -> list[str]:
        if self.allow_headers == "*":
            return []
        return [h for h in headers if h.lower() not in self.allow_headers]


def _names(value: Any, key: str, upper: bool = False) -> str | tuple[str, ...]:
    if value == "*":
        return "*"
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple | set | frozenset):
        raise TypeError(f"{key} must be '*' or a list of names, not {value!r}")
    return tuple(str(v).strip().upper() if upper else str(v).strip().lower() for v in value)


def _options(origin: str, value: Any) -> CorsOptions:
    if isinstance(value, CorsOptions):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"origin {origin!r}: expected a dict of options, not {value!r}")
    known = {f.name for f in fields(CorsOptions)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(
            f"origin {origin!r}: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    try:
        return CorsOptions(**value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"origin {origin!r}: {exc}") from None


def check_cors_options(value: Any) -> dict[str, CorsOptions] | None:
    """``value`` as origin -> :class:`CorsOptions`; ``TypeError``/``ValueError`` naming
    the origin and option that is wrong.

    >>> check_cors_options({'*': {'allow_methods': ['get']}})['*'].allow_methods
    ('GET',)
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(
            "expected a dict of origin -> options like {'*': {'allow_methods': '*'}}, "
            f"got {value!r}"
        )
    return {str(origin): _options(str(origin), opts) for origin, opts in value.items()}


def _forbidden(reason: str) -> web.Response:
    return web.json_response(
        {"error": reason}, status=403, dumps=lambda v: orjson.dumps(v).decode()
    )


class Cors:
    """Answers preflights and adds CORS headers for one view's options."""

    def __init__(self, options: Mapping[str, CorsOptions]) -> None:
        self.options = dict(options)

    def options_for(self, origin: str) -> CorsOptions | None:
        return self.options.get(origin) or self.options.get("*")

    @staticmethod
    def is_preflight(request: web.Request) -> bool:
        headers = request.headers
        return (
            request.method == hdrs.METH_OPTIONS
            and hdrs.ORIGIN in headers
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers
        )

    def preflight(self, request: web.Request, methods: Collection[str]) -> web.Response:
        """The answer to a preflight for a view that has ``methods``."""
        origin = request.headers[hdrs.ORIGIN]
        options = self.options_for(origin)
        if options is None:
            return _forbidden(f"CORS: origin {origin!r} is not allowed")
        method = request.headers[hdrs.ACCESS_CONTROL_REQUEST_METHOD].upper()
        if method not in methods or not options.allows_method(method):
            return _forbidden(f"CORS: method {method!r} is not allowed from {origin!r}")
        requested = [
            h.strip().lower()
            for h in request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "").split(",")
            if h.strip()
        ]
        refused = options.refused_headers(requested)
        if refused:
            return _forbidden(f"CORS: header(s) {', '.join(refused)} not allowed from {origin!r}")
        response = web.Response(status=200)
        headers = response.headers
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = method
        if requested:
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(requested)
        if options.allow_credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        if options.max_age is not None:
            headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(options.max_age)
        headers[hdrs.VARY] = "Origin"
        return response

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the CORS headers to the response to an allowed origin's request."""
        origin = request.headers.get(hdrs.ORIGIN)
        options = None if origin is None else self.options_for(origin)
        if origin is None or options is None:
            return
        headers = response.headers
        if options.expose_headers == "*":
            exposed = [h for h in headers if h.lower() not in _SAFELISTED]
        else:
            exposed = list(options.expose_headers)
        if exposed:
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = ", ".join(exposed)
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        headers.add(hdrs.VARY, "Origin")
        if options.allow_credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
