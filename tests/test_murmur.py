"""The key hash of the default partitioner (`router.kafka.murmur`): the values of Kafka's own
Java test cases, and the same answers as aiokafka's byte-at-a-time murmur2 for any key, so that
a meeting's messages land where every other client puts them."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from router.kafka.murmur import key_hash, key_partition, murmur2

# Kafka's `UtilsTest.testMurmur2` (signed, as Java prints them).
JAVA_CASES = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "signed"), JAVA_CASES, ids=[k.decode() for k, _ in JAVA_CASES])
def test_java_values(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF
    assert key_hash(key) == signed & 0x7FFFFFFF


@given(st.binary(max_size=300))
def test_same_as_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@pytest.mark.parametrize("length", range(9), ids=lambda n: f"{n} bytes")
def test_every_tail_length(length: int) -> None:
    key = bytes(range(200, 200 + length))
    assert murmur2(key) == aiokafka_murmur2(key)


def test_partition_among_unsorted_partitions() -> None:
    key = b"a-little-bit-long-string"
    assert key_partition(key, [5, 3, 4, 0, 2, 1]) == key_hash(key) % 6
