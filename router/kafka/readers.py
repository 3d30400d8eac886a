"""Reading without a consumer group: whole partitions (restoring state, `router backtest`), the
partitions one key lies on (`router why`), topic metadata, and every partition of a topic
(`router tail`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from router.config import KafkaConfig
from router.kafka.client import client_options
from router.kafka.follower import TopicsFollower
from router.kafka.messages import Consumed, consumed
from router.kafka.murmur import key_partition

# Messages handed over at once when reading a partition whole (see `read_partitions`).
RESTORE_BATCH = 1000


async def read_partitions(
    config: KafkaConfig,
    bootstrap: str,
    topic: str,
    partitions: Sequence[int],
    timeout: float = 30.0,
) -> AsyncIterator[list[Consumed]]:
    """Every message of some partitions, start to end as of now (restoring compacted state),
    a fetched batch at a time and in offset order within each partition: the caller handles
    each batch and lets go of it, so that a long topic is neither held whole nor decoded in
    one stretch of the event loop. `timeout` bounds each fetch that brings nothing."""
    if not partitions:
        return
    async with _started(config, bootstrap) as consumer:
        parts = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(parts)
        async for batch in _to_end(consumer, parts, timeout):
            yield batch


async def read_key_partitions(
    config: KafkaConfig,
    bootstrap: str,
    topics: Sequence[str],
    key: bytes,
    timeout: float = 30.0,
) -> AsyncIterator[list[Consumed]]:
    """The messages keyed `key` (and any without a key) so far on each topic, read from the
    one partition the producer puts that key on, start to end as of now, a batch at a time;
    other keys are skipped undecoded. Raises LookupError naming a topic that does not exist."""
    async with _started(config, bootstrap) as consumer:
        cluster = await consumer._client.fetch_all_metadata()
        parts = []
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                raise LookupError(f"topic {topic!r} does not exist on the broker")
            parts.append(TopicPartition(topic, key_partition(key, partitions)))
        consumer.assign(parts)
        async for batch in _to_end(consumer, parts, timeout, keys=(key, None)):
            yield batch


@contextlib.asynccontextmanager
async def _started(config: KafkaConfig, bootstrap: str) -> AsyncIterator[Any]:
    """A started consumer outside any group, for reading partitions to their end."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=RESTORE_BATCH,
        # The embedded broker holds every fetch this long, even with data to answer.
        fetch_max_wait_ms=config.fetch_wait_ms,
        **client_options(config, bootstrap),
    )
    try:
        await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def _to_end(
    consumer: Any,
    parts: list[TopicPartition],
    timeout: float,
    keys: tuple[bytes | None, ...] | None = None,
) -> AsyncIterator[list[Consumed]]:
    """Read assigned partitions from their start to their end offsets as of now (only the
    messages with one of `keys`, when given)."""
    await consumer.seek_to_beginning(*parts)
    ends = await consumer.end_offsets(parts)
    for tp in parts:
        end, fetched_end = ends[tp], None
        while await consumer.position(tp) < end:
            async with asyncio.timeout(timeout):
                batch = await consumer.getmany(tp, timeout_ms=500)
            if fetched_end is None:
                # The embedded broker answers a partition's end as just past the first message
                # of its last record batch; the end a fetch reports (the first one, so as not
                # to chase what is written meanwhile) is right.
                fetched_end = consumer.highwater(tp)
                end = max(end, fetched_end or 0)
            yield [consumed(m) for m in batch.get(tp, []) if keys is None or m.key in keys]


async def partition_counts(
    config: KafkaConfig, bootstrap: str, topics: Sequence[str]
) -> dict[str, int | None]:
    """How many partitions each topic has (None: the topic does not exist)."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, group_id=None, **client_options(config, bootstrap)
    )
    try:
        await consumer.start()
        # (aiokafka's `topics()` fetches the same but keeps none of it)
        cluster = await consumer._client.fetch_all_metadata()
        counts: dict[str, int | None] = {}
        for topic in topics:
            found = cluster.partitions_for_topic(topic)
            counts[topic] = len(found) if found else None
        return counts
    finally:
        await consumer.stop()


class TopicReader(TopicsFollower):
    """Reads every partition of one topic without a consumer group (for `router tail`), from
    its beginning or from its end."""

    def __init__(
        self, config: KafkaConfig, bootstrap: str, topic: str, *, from_beginning: bool
    ) -> None:
        super().__init__(config, bootstrap, [topic], history=None if from_beginning else 0)
