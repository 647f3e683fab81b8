"""How a setting is declared (:func:`setting`) and the validators of the settings
declared in :mod:`faust.settings`.

Each takes the value as given (a Python value, or the string from an environment
variable) and returns the value to keep, or raises ``TypeError``/``ValueError`` saying
what was expected; the caller names the setting and where the value came from.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import importlib
import json
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an int >= 1, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected an int >= 1, got {value!r}") from None
    if number < 1 or (isinstance(value, float) and value != number):
        raise ValueError(f"expected an int >= 1, got {value!r}")
    return number


def positive_float(value: Any) -> float:
    if isinstance(value, datetime.timedelta):  # Faust accepts timedelta for seconds
        value = value.total_seconds()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number of seconds > 0, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return number


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise TypeError(f"expected true or false, got {value!r}")


def urls(value: Any) -> list[str]:
    if isinstance(value, str):
        urls = [u.strip() for u in value.split(";") if u.strip()]
    elif isinstance(value, list | tuple):
        urls = [str(u).strip() for u in value]
    else:
        raise TypeError(f"expected a URL like 'kafka://localhost:9092', got {value!r}")
    if not urls:
        raise ValueError("expected at least one URL, like 'memory://' or 'kafka://localhost:9092'")
    for url in urls:
        if "://" not in url:
            raise ValueError(f"{url!r} has no scheme: use 'memory://' or 'kafka://{url}'")
    return urls


def store_url(value: Any) -> str:
    url = str(value)
    scheme = url.partition("://")[0]
    if scheme not in ("memory", "rocksdb"):
        raise ValueError(f"unknown store {url!r}: use 'memory://' or 'rocksdb://'")
    return url


def choice(*choices: str) -> Any:
    def coerce(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return coerce


def time_zone(value: Any) -> datetime.tzinfo:
    if isinstance(value, datetime.tzinfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        hint = difflib.get_close_matches(str(value), sorted(available_timezones()), n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else "use an IANA name like 'Europe/Oslo'"
        raise ValueError(f"unknown time zone {value!r}: {fix}") from None


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an int >= 0, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected an int >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected an int >= 0, got {value!r}")
    return number


def non_negative_float(value: Any) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number of seconds >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {value!r}")
    return number


def optional(coerce: Any) -> Any:
    def optional(value: Any) -> Any:
        return None if value in (None, "") else coerce(value)

    return optional


def acks(value: Any) -> int:
    if value in ("all", "-1", -1):
        return -1
    if value in (0, 1, "0", "1"):
        return int(value)
    raise ValueError(f"expected -1 (or 'all'), 0 or 1, got {value!r}")


def web_port(value: Any) -> int:
    port = non_negative_int(value)
    if port > 65535:
        raise ValueError(f"expected a TCP port (1-65535, or 0 for any free one), got {value!r}")
    return port


def http_url(value: Any) -> str:
    url = string(value).strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return url


def cors_options(value: Any) -> dict[str, Any] | None:
    from .web.cors import check_cors_options

    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except ValueError as exc:
            raise ValueError(f"expected a JSON object of origin -> options: {exc}") from None
    return check_cors_options(value)


def credentials(value: Any) -> Any:
    from .auth import Credentials

    if value is None or isinstance(value, Credentials):
        return value
    raise TypeError(
        f"expected faust.SASLCredentials(...) or faust.SSLCredentials(...), got {value!r}"
    )


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def host_name(value: Any) -> str:
    """A host name; empty: this machine's (``socket.gethostname()``)."""
    return string(value) or socket.gethostname()


def topic_template(value: Any) -> str:
    name = string(value).strip()
    if not name:
        raise ValueError("expected a topic name like '{app_id}-{name}-dlq', got ''")
    return name


def logging_config(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"expected a JSON object for logging.config.dictConfig: {exc}"
            ) from None
    if not isinstance(value, Mapping):
        raise TypeError(
            "expected a logging.config.dictConfig dict like "
            f"{{'version': 1, 'loggers': {{'myapp': {{'level': 'DEBUG'}}}}}}, got {value!r}"
        )
    version = value.get("version", 1)
    if version != 1:
        raise ValueError(f"'version' must be 1 (the only dictConfig schema), got {version!r}")
    for key in ("formatters", "filters", "handlers", "loggers", "root"):
        if key in value and not isinstance(value[key], Mapping):
            raise TypeError(f"{key!r} must be a dict, got {value[key]!r}")
    return dict(value)


def autodiscover(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return (
            boolean(value)
            if value.lower() in ("0", "1", "true", "false", "yes", "no")
            else [m.strip() for m in value.split(",") if m.strip()]
        )
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if callable(value):
        # Faust's form: called at discovery, returns the module names.
        return value
    raise TypeError(
        f"expected True, False, a list of module names or a function returning one, got {value!r}"
    )


def any_value(value: Any) -> Any:
    """Settings accepted for Faust compatibility that have no effect here."""
    return value


def ssl_context(value: Any) -> Any:
    import ssl

    if value is None or isinstance(value, ssl.SSLContext):
        return value
    raise TypeError(f"expected an ssl.SSLContext, got {value!r}")


def log_handlers(value: Any) -> list[logging.Handler]:
    if value is None:
        return []
    if isinstance(value, logging.Handler):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(h, logging.Handler) for h in value
    ):
        raise TypeError(f"expected a list of logging.Handler instances, got {value!r}")
    return list(value)


def only(
    allowed: tuple[Any, ...], why: str, convert: Callable[[Any], Any] = any_value
) -> Callable[[Any], Any]:
    """A Faust setting whose other values change semantics this library does not have:
    the default-equivalent ``allowed`` values pass (after ``convert``), any other raises
    naming ``why``."""

    def check(value: Any) -> Any:
        value = convert(value)
        if value in allowed or str(value).lower() in {str(a).lower() for a in allowed}:
            return value
        raise ValueError(f"{value!r} is not supported here: {why}")

    return check


def _resolve(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def extension(default_path: str, ours: str) -> Callable[[Any], Any]:
    """A Faust class-valued setting (``Stream=``, ``Table=``...): ``None``, Faust's
    default path (``'faust:Stream'``) or our own class (``ours``, a ``module:attr`` path)
    are accepted; a custom class cannot be swapped in here and is refused."""
    accepted = {default_path, default_path.replace(":", "."), ours, ours.replace(":", ".")}

    def check(value: Any) -> Any:
        if value is None or value in accepted:
            return value
        if not isinstance(value, str) and value is _resolve(ours):
            return value
        name = value if isinstance(value, str) else getattr(value, "__qualname__", value)
        raise ValueError(
            f"a custom class ({name!r}) cannot replace {ours.replace(':', '.')} here; "
            f"remove the setting (or set it to {default_path!r})"
        )

    return check


def setting(
    default: Any,
    validate: Callable[[Any], Any],
    doc: str,
    *,
    env: str | tuple[str, ...] = (),
    no_effect: str = "",
) -> Any:
    """Declare one field of :class:`Settings`: its default, validator (given the value or
    the environment string, returns the value or raises ``TypeError``/``ValueError``), doc
    text, the environment names Faust reads besides ``FAUST_<NAME>``, and, for a Faust
    setting without effect here, why.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Demo:
    ...     retries: int = setting(3, non_negative_int, "Times to retry.", env="RETRIES")
    >>> Demo().retries
    3
    """
    meta = {"validate": validate, "doc": doc, "env": (env,) if isinstance(env, str) else env}
    meta["no_effect"] = no_effect
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
