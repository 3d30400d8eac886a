"""Where the producer puts a message: its partition, and the batch it joins.

The partition is the one Kafka's default partitioner picks (murmur2 of the key over the
topic's sorted partitions, as the Java client does), with each key's hash remembered: a
meeting's key comes back for its webhook and for every record the worker writes about it.

The batch: aiokafka's `send` checks the metadata, the serializers, the size and the
transaction before it appends a message to its partition's open batch, and logs it at debug
level; that costs about twice the append (12 µs a message, measured). While a produce request
is in flight every partition that has messages waiting has an open batch, so under load a
message is appended to it here directly, and `send` runs only when there is none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from router.kafka.messages import Headers
from router.kafka.murmur import key_hash

# Keys whose partition hash is remembered; the table is emptied when full.
PARTITION_CACHE_KEYS = 16_384


class Placement:
    """One producer's partition choices and direct appends."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}
        # Each topic's partitions, sorted; forgotten whenever the cluster metadata changes.
        self._partitions: dict[str, list[int]] = {}
        self._topic_partitions: dict[tuple[str, int], TopicPartition] = {}
        # Messages that went straight into an open batch: the tests hold this above zero
        # under load, so that an aiokafka release that closes the path is noticed.
        self.direct_appends = 0

    def forget_partitions(self) -> None:
        """The cluster's metadata changed: look every topic's partitions up again."""
        self._partitions.clear()

    def partition_of(self, producer: Any, topic: str, key: bytes) -> int | None:
        """The partition of `key` on `topic`; None when its partitions are not known yet."""
        ordered = self._partitions.get(topic)
        if ordered is None:
            partitions = producer.client.cluster.partitions_for_topic(topic)
            if not partitions:
                return None
            ordered = self._partitions[topic] = sorted(partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= PARTITION_CACHE_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = key_hash(key)
        return int(ordered[hashed % len(ordered)])

    def append(
        self,
        producer: Any,
        topic: str,
        partition: int,
        message: tuple[bytes | None, bytes | None, Headers],
    ) -> asyncio.Future[Any] | None:
        """The message (key, value, headers) appended to its partition's open batch, as
        `send` ends by doing; None when no batch is open or it has no room (then `send`)."""
        accumulator = producer._message_accumulator
        if accumulator._closed or accumulator._exception is not None:
            return None
        where = self._topic_partitions.get((topic, partition))
        if where is None:
            where = self._topic_partitions[(topic, partition)] = TopicPartition(topic, partition)
        batches = accumulator._batches.get(where)
        if not batches:
            return None
        key, value, headers = message
        future: asyncio.Future[Any] | None = batches[-1].append(key, value, None, headers=headers)
        if future is not None:
            self.direct_appends += 1
        return future
