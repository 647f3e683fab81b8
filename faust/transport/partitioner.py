"""Key partitioning identical to the Java Kafka client's default partitioner.

A keyed message goes to ``toPositive(murmur2(key)) % partitions``, so the same key lands
on the same partition whether a Faust app or a Java/Kafka Streams app produced it.
"""

from __future__ import annotations

import itertools

__all__ = ["murmur2", "partition_for_key", "KeyPartitioner", "RoundRobin"]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Return Kafka's 32-bit murmur2 hash of ``data`` as a signed int (like Java's)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """``partition_for_key`` with the hashes of recently seen keys remembered.

    Keys repeat in a stream (sensors, accounts, users), and hashing one in Python costs a
    few microseconds; the cache holds at most ``size`` keys and starts over when full
    (65,536 short keys take a few MB; a stream whose keys rarely repeat pays only the
    hash it would pay anyway, plus a dict lookup).
    """

    def __init__(self, size: int = 65_536) -> None:
        self.size = size
        self._hashes: dict[bytes, int] = {}

    def partition(self, key: bytes, partitions: int) -> int:
        hashes = self._hashes
        h = hashes.get(key)
        if h is None:
            if len(hashes) >= self.size:
                hashes.clear()
            h = hashes[key] = murmur2(key) & 0x7FFFFFFF
        return h % partitions


class RoundRobin:
    """Spreads messages without a key over the partitions of each topic."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def next(self, topic: str, partitions: int) -> int:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters[topic] = itertools.count()
        return next(counter) % partitions
