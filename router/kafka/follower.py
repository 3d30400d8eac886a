"""Following topics without a consumer group (`router console`, `router tail`): every
partition of each, from its beginning, from a little history before its end, or from where a
previous follower left off (so that a broker restart loses nothing and repeats little)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from router.config import KafkaConfig
from router.kafka.client import client_options
from router.kafka.messages import Consumed, consumed

Position = tuple[str, int]  # (topic, partition)


class TopicsFollower:
    """Reads every partition of some topics, never joining a group, never committing;
    `history` is how many of each partition's last records to start with (None: all)."""

    def __init__(
        self,
        config: KafkaConfig,
        bootstrap: str,
        topics: Sequence[str],
        *,
        history: int | None,
        resume: Mapping[Position, int] | None = None,
    ) -> None:
        self._topics = tuple(topics)
        self._history = history
        self._resume = dict(resume or {})
        self._ends: dict[TopicPartition, int] = {}
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, group_id=None, **client_options(config, bootstrap)
        )

    async def __aenter__(self) -> TopicsFollower:
        try:
            await self._consumer.start()
            await self._seek()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def _seek(self) -> None:
        known = await self._consumer.topics()
        missing = [topic for topic in self._topics if topic not in known]
        if missing:
            names = ", ".join(repr(topic) for topic in missing)
            raise LookupError(f"topic {names} does not exist on the broker")
        parts = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(parts)
        # From the very beginning or end, aiokafka's own seeks: they start the first fetch
        # at once, which matters with the embedded broker (it answers a fetch only when the
        # fetch's wait is over), so that a short first read of a whole topic finds its records.
        if not self._resume and self._history is None:
            await self._consumer.seek_to_beginning(*parts)
        elif not self._resume and self._history == 0:
            await self._consumer.seek_to_end(*parts)
        ends = self._ends = await self._consumer.end_offsets(parts)
        if not self._resume and self._history in (None, 0):
            return
        firsts = await self._consumer.beginning_offsets(parts)
        for tp in parts:
            start = self._resume.get(
                (tp.topic, tp.partition),
                firsts[tp] if self._history is None else ends[tp] - self._history,
            )
            self._consumer.seek(tp, max(firsts[tp], min(start, ends[tp])))

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def backlog(self, timeout: float = 30.0) -> AsyncIterator[list[Consumed]]:
        """The messages up to the end of each partition as it was on opening, a batch at a
        time (so that a page served after them shows what the topics held); `timeout` bounds
        each fetch that brings nothing."""
        for tp, end in self._ends.items():
            while await self._consumer.position(tp) < end:
                async with asyncio.timeout(timeout):
                    batch = await self.fetch(0.5)
                yield batch

    async def fetch(self, timeout: float) -> list[Consumed]:
        """The next messages, in offset order within each partition (possibly none)."""
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        return [consumed(m) for messages in batches.values() for m in messages]
