"""Keys must land where Kafka's Java client puts them."""

import pytest

from faust.transport.partitioner import KeyPartitioner, RoundRobin, murmur2, partition_for_key

# Expected values of org.apache.kafka.common.utils.Utils.murmur2 (Kafka's own tests).
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
    "1": -1993445489,
    "12": 126087238,
    "123": -267702483,
    "1234": -1614185708,
    "12345": -1188365604,
}


@pytest.mark.parametrize(("text", "expected"), sorted(JAVA_MURMUR2.items()))
def test_murmur2_matches_java_client(text: str, expected: int) -> None:
    assert murmur2(text.encode()) == expected


def test_partition_is_positive_hash_modulo_partitions() -> None:
    # toPositive(-973932308) = 1173551340; 1173551340 % 8 = 4
    assert partition_for_key(b"21", 8) == (-973932308 & 0x7FFFFFFF) % 8 == 4
    assert {partition_for_key(k.encode(), 3) for k in JAVA_MURMUR2} <= {0, 1, 2}


def test_empty_key_hashes() -> None:
    assert isinstance(murmur2(b""), int)
    assert 0 <= partition_for_key(b"", 5) < 5


def test_round_robin_cycles_per_topic() -> None:
    rr = RoundRobin()
    assert [rr.next("a", 3) for _ in range(4)] == [0, 1, 2, 0]
    assert rr.next("b", 3) == 0


def test_key_partitioner_agrees_with_partition_for_key_and_stays_bounded() -> None:
    partitioner = KeyPartitioner(size=100)
    keys = [f"user-{i}".encode() for i in range(250)]
    for _ in range(2):  # the second pass reads hashes from the cache
        for key in keys:
            for partitions in (1, 3, 4, 12):
                assert partitioner.partition(key, partitions) == partition_for_key(key, partitions)
    assert len(partitioner._hashes) <= 100
