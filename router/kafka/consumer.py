"""The consumer-group member the worker fetches and commits with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from router.config import KafkaConfig
from router.kafka.client import client_options
from router.kafka.messages import Consumed, consumed


class Consumer:
    """A consumer-group member with manual commits; `on_assign`/`on_revoke` see partitions."""

    def __init__(
        self,
        config: KafkaConfig,
        bootstrap: str,
        topics: Sequence[str],
        *,
        group_id: str | None,
        on_assign: Callable[[list[int]], Awaitable[None]] | None = None,
        on_revoke: Callable[[list[int]], Awaitable[None]] | None = None,
        from_beginning: bool = True,
    ) -> None:
        self._topics = list(topics)
        self._options: dict[str, Any] = {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if from_beginning else "latest",
            "max_poll_records": 500,
            "fetch_max_wait_ms": config.fetch_wait_ms,
            "session_timeout_ms": int(config.session_timeout_seconds * 1000),
            "heartbeat_interval_ms": int(config.session_timeout_seconds * 1000 / 3),
            **client_options(config, bootstrap),
        }
        self._consumer: Any = None
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    async def start(self) -> None:
        """Connect, join the group and subscribe (raises when the broker is unreachable)."""
        consumer = AIOKafkaConsumer(**self._options)
        try:
            await consumer.start()
            consumer.subscribe(self._topics, listener=_Listener(self))
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def fetch(self, timeout: float) -> list[Consumed]:
        """The next batch of messages (possibly empty)."""
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        return [consumed(m) for messages in batches.values() for m in messages]

    async def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit `next offset to read` per (topic, partition)."""
        if offsets:
            await self._consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})

    def pause(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Stop fetching from these partitions until resumed."""
        self._consumer.pause(*[TopicPartition(t, p) for t, p in partitions])

    def resume(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Fetch from these partitions again."""
        self._consumer.resume(*[TopicPartition(t, p) for t, p in partitions])

    def assignment(self) -> list[tuple[str, int]]:
        """The partitions this member holds."""
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    async def committed(self, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        """The group's committed position of each partition on the broker (None: none)."""
        return {p: await self._consumer.committed(TopicPartition(topic, p)) for p in partitions}

    async def seek_to_beginning(self, topic: str, partitions: Iterable[int]) -> None:
        """Read these partitions again from their first message."""
        await self._consumer.seek_to_beginning(*[TopicPartition(topic, p) for p in partitions])

    async def lag(self) -> dict[int, int]:
        """Messages not yet consumed, by partition of the assignment."""
        parts = list(self._consumer.assignment())
        if not parts:
            return {}
        ends = await self._consumer.end_offsets(parts)
        return {tp.partition: max(0, ends[tp] - await self._consumer.position(tp)) for tp in parts}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's rebalance callbacks, forwarded to the consumer's owner."""

    def __init__(self, owner: Consumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._owner._on_revoke is not None:
            await self._owner._on_revoke(sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self._owner._on_assign is not None:
            await self._owner._on_assign(sorted(tp.partition for tp in assigned))
