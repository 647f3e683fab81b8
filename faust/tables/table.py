"""Table and GlobalTable: dicts that survive crashes.

Example::

    word_counts = app.Table('word-counts', default=int)

    @app.agent(words_topic)
    async def count(words):
        async for word in words.group_by(lambda w: w, name='word'):
            word_counts[word] += 1
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..stores import MISSING
from .base import Collection

if TYPE_CHECKING:
    from .windows import Window
    from .wrappers import WindowWrapper

__all__ = ["Table", "GlobalTable"]


class Table(Collection):
    """A dict partitioned like the stream that writes it, backed by a changelog."""

    def __getitem__(self, key: Any) -> Any:
        value = self._get(key)
        if value is MISSING:
            if self.default is None:
                raise KeyError(key)
            return self.default()
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self._set(key, value)

    def __delitem__(self, key: Any) -> None:
        if self._get(key) is MISSING:
            raise KeyError(key)
        self._del(key)

    def __contains__(self, key: object) -> bool:
        return self._get(key) is not MISSING

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._get(key)
        return default if value is MISSING else value

    def pop(self, key: Any, *default: Any) -> Any:
        value = self._get(key)
        if value is MISSING:
            if default:
                return default[0]
            raise KeyError(key)
        self._del(key)
        return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = self._get(key)
        if value is MISSING:
            self._set(key, default)
            return default
        return value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self._set(key, value)

    def keys(self) -> Iterator[Any]:
        return (key for key, _ in self._iter_items())

    def values(self) -> Iterator[Any]:
        return (value for _, value in self._iter_items())

    def items(self) -> Iterator[tuple[Any, Any]]:
        return self._iter_items()

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __len__(self) -> int:
        return self.size()

    def as_dict(self) -> dict[Any, Any]:
        """A plain dict copy of the local data."""
        return dict(self._iter_items())

    # -- windows
    def tumbling(self, size: float, expires: float | None = None, **kwargs: Any) -> WindowWrapper:
        """Tumbling windows of ``size`` seconds: ``table.tumbling(60, expires=3600)``."""
        from .windows import TumblingWindow
        from .wrappers import WindowWrapper

        return WindowWrapper(self, TumblingWindow(size, expires), **kwargs)

    def hopping(
        self, size: float, step: float, expires: float | None = None, **kwargs: Any
    ) -> WindowWrapper:
        """Hopping windows of ``size`` seconds every ``step`` seconds."""
        from .windows import HoppingWindow
        from .wrappers import WindowWrapper

        return WindowWrapper(self, HoppingWindow(size, step, expires), **kwargs)

    def using_window(self, window: Window, *, key_index: bool = False) -> WindowWrapper:
        """This table windowed by ``window`` (a :class:`~faust.TumblingWindow`,
        :class:`~faust.HoppingWindow` or :class:`~faust.SlidingWindow`), as Faust's
        ``using_window``.

        Example::

            views = app.Table('views', default=int).using_window(
                faust.TumblingWindow(60, expires=3600))
        """
        from .windows import Window
        from .wrappers import WindowWrapper

        if not isinstance(window, Window):
            raise TypeError(
                f"Table {self.name!r}: using_window() takes a window such as "
                f"faust.TumblingWindow(60), not {window!r}"
            )
        return WindowWrapper(self, window, key_index=key_index)

    def sliding(
        self, before: float, after: float, expires: float | None = None, **kwargs: Any
    ) -> WindowWrapper:
        """A window around each event: its key's events from ``before`` seconds before
        it to ``after`` seconds after (Faust's sliding window; see
        :class:`~faust.SlidingWindow`).

        Example::

            clicks = app.Table('clicks', default=int).sliding(10, 10, expires=60)
            clicks[page] += 1
            clicks[page].current()   # clicks of the page 10 s either side of this one
        """
        from .windows import SlidingWindow
        from .wrappers import WindowWrapper

        return WindowWrapper(self, SlidingWindow(before, after, expires), **kwargs)


class GlobalTable(Table):
    """A table every worker holds in full: any worker can read any key.

    Writes still go to one changelog partition (the event's, or the key's with
    ``use_partitioner=True``); every worker follows the whole changelog.
    """

    is_global = True
