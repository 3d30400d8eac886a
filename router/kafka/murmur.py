"""Which partition Kafka's default partitioner gives a key: murmur2 of the key, as the Java
client computes it (and aiokafka, and every client that keeps keyed messages where Java puts
them). aiokafka's murmur2 walks the key a byte at a time in Python; this one unpacks it four
bytes at a time, which halves the cost of a webhook's key. A property test holds the two equal.
"""

from __future__ import annotations

import struct
from collections.abc import Collection

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` (unsigned 32 bits), the variant of Kafka's `Utils.murmur2`."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    unpack = _WORDS.get(words)
    if unpack is None:
        unpack = _WORDS[words] = struct.Struct(f"<{words}I")
    for word in unpack.unpack_from(data):
        k = (word * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        tail = words << 2
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_hash(key: bytes) -> int:
    """The hash Kafka's default partitioner takes a key's partition from (positive murmur2)."""
    return murmur2(key) & 0x7FFFFFFF


def key_partition(key: bytes, partitions: Collection[int]) -> int:
    """The partition the producer puts messages keyed `key` on, among a topic's partitions."""
    ordered = sorted(partitions)
    return ordered[key_hash(key) % len(ordered)]
