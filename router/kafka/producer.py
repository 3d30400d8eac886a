"""Producing. The producer uses `acks=all` and, against a real cluster, idempotence. A
memory-only broker that restarts comes back empty while a producer's cached metadata still
points at it, and it would then acknowledge messages for topics that no longer exist. So any
broken connection or failed send marks the log "suspect", and the next publish first checks
(and if allowed re-creates) the topics before it sends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from router.config import KafkaConfig
from router.errors import PublishError
from router.kafka.client import TopicAdmin, client_options
from router.kafka.messages import Headers, Outgoing

log = logging.getLogger("router.kafka")

# aiokafka keeps one produce request in flight per broker and fills one batch per partition
# meanwhile; a sender that finds its batch full waits for it to drain, and with many senders
# that wait (a timer and a wake-up each, for every sender, every round trip) costs more than
# the sending. A batch that holds everything arriving during one round trip avoids it.
PRODUCER_BATCH_BYTES = 1024 * 1024
# Keys whose partition hash is remembered (a meeting's key comes back for its webhook and for
# every record the worker writes about it); the table is emptied when full.
PARTITION_CACHE_KEYS = 16_384


class Publisher:
    """Appends messages and waits for the broker's acknowledgement, within a deadline."""

    def __init__(
        self,
        config: KafkaConfig,
        bootstrap: str,
        admin: TopicAdmin,
        *,
        max_message_bytes: int = 1024 * 1024,
    ) -> None:
        # None: try idempotence against a real cluster, and go on without it when the cluster
        # refuses to give out producer ids (some Kafka-compatible services, older clusters).
        self._idempotence: bool | None = (
            (None if not config.embedded else False)
            if config.idempotent is None
            else config.idempotent
        )
        self._options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": self._idempotence is not False,
            "request_timeout_ms": int(max(config.ack_timeout_seconds, 1) * 1000) + 5000,
            "max_batch_size": PRODUCER_BATCH_BYTES,
            # (aiokafka's default, 1 MiB, would refuse a body of the receiver's full size once
            # its headers and framing are added)
            "max_request_size": max(max_message_bytes, 1024 * 1024),
            **client_options(config, bootstrap),
        }
        self._producer: Any = None
        # Why the cluster refused a required idempotent producer (until restarted).
        self._refused: str | None = None
        self._admin = admin
        self._suspect = True  # nothing is trusted until the topics have been seen
        self._check_lock = asyncio.Lock()
        self._hashes: dict[bytes, int] = {}
        # Each topic's partitions, sorted; forgotten whenever the cluster metadata changes.
        self._partitions: dict[str, list[int]] = {}

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect (raises KafkaError/OSError when the broker cannot be reached, and
        `IdempotenceRefused` when idempotence is required and the cluster refuses it)."""
        if self._refused is not None:  # (required, and refused once: no new attempt)
            raise IdempotenceRefused(self._refused)
        try:
            producer = await self._started(self._options)
        except KafkaError as exc:
            if not self._options["enable_idempotence"]:
                raise
            # Refused idempotence, or no broker at all: a producer without it tells which.
            plain = {**self._options, "enable_idempotence": False}
            producer = await self._started(plain)
            if self._idempotence is True:
                # (shielded: a probe's time-out must not leave this producer open)
                await asyncio.shield(producer.stop())
                self._refused = type(exc).__name__
                raise IdempotenceRefused(self._refused) from None
            log.warning(
                "the cluster refuses idempotent producers; producing without idempotence "
                "(kafka.idempotent: false skips the attempt, true requires it)",
                extra={"error": type(exc).__name__},
            )
            self._options = plain
        client = producer.client
        original = client._on_connection_closed

        def on_closed(conn: Any, reason: Any) -> None:
            if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
                self.mark_suspect()
            original(conn, reason)

        client._on_connection_closed = on_closed
        client.cluster.add_listener(lambda _: self._partitions.clear())
        self._producer = producer

    @staticmethod
    async def _started(options: dict[str, Any]) -> Any:
        producer = AIOKafkaProducer(**options)
        try:
            await producer.start()
        except BaseException:
            await asyncio.shield(producer.stop())
            raise
        return producer

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def mark_suspect(self) -> None:
        """Require a topic check before the next send (broker restarted or unreachable)."""
        self._suspect = True

    @property
    def suspect(self) -> bool:
        """Whether the topics must be checked before the next send."""
        return self._suspect

    async def verify_topics(self) -> list[str]:
        """Check (and re-create) the topics once for all waiting senders; return the missing."""
        async with self._check_lock:
            if not self._suspect:
                return []
            missing = await self._admin.ensure()
            if not missing:
                self._suspect = False
            return missing

    async def publish(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Headers,
        timeout: float,
        partition: int | None = None,
    ) -> tuple[int, int]:
        """Send and wait for the acknowledgement; (partition, offset), or `PublishError`."""
        try:
            async with asyncio.timeout(timeout):
                if self._producer is None:
                    raise PublishError("not connected to the broker")
                if self._suspect:
                    missing = await self.verify_topics()
                    if missing:
                        raise PublishError(f"topics missing on the broker: {', '.join(missing)}")
                future = await self._send(Outgoing(topic, key, value, headers, partition))
                metadata = await future
        except TimeoutError:
            self.mark_suspect()
            raise PublishError(f"no acknowledgement from the broker within {timeout} s") from None
        except (KafkaError, OSError) as exc:
            self.mark_suspect()
            raise PublishError(f"the broker refused the message: {type(exc).__name__}") from None
        return int(metadata.partition), int(metadata.offset)

    def _partition_of(self, topic: str, key: bytes) -> int | None:
        """The partition aiokafka's default partitioner picks for `key` (murmur2 of the key
        over all partitions, as Kafka's Java client does), with the hash remembered: murmur2
        is pure Python there. None when the topic's partitions are not known yet."""
        ordered = self._partitions.get(topic)
        if ordered is None:
            partitions = self._producer.client.cluster.partitions_for_topic(topic)
            if not partitions:
                return None
            ordered = self._partitions[topic] = sorted(partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= PARTITION_CACHE_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = key_hash(key)
        return int(ordered[hashed % len(ordered)])

    async def send_all(self, messages: Sequence[Outgoing], timeout: float) -> Unsent:
        """Send every message, then wait once for all their acknowledgements, all within one
        deadline; what was not acknowledged comes back, to be sent again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent: list[asyncio.Future[Any] | None] = []
        error: str | None = None
        try:
            async with asyncio.timeout_at(deadline):
                if self._producer is None:
                    return Unsent(list(messages), "not connected to the broker")
                if self._suspect:
                    missing = await self.verify_topics()
                    if missing:
                        return Unsent(list(messages), f"topics missing: {', '.join(missing)}")
                for m in messages:  # (one at a time: what was sent before a failure counts)
                    sent.append(await self._send(m))  # noqa: PERF401
        except TimeoutError:
            error = f"no acknowledgement from the broker within {timeout} s"
        except (KafkaError, OSError) as exc:
            error = f"the broker refused the message: {type(exc).__name__}"
        waiting = [f for f in sent if f is not None]
        if waiting and error is None:
            _, late = await asyncio.wait(waiting, timeout=max(deadline - loop.time(), 0.0))
            if late:
                error = f"no acknowledgement from the broker within {timeout} s"
        unsent = _unsent(messages, sent, error)
        if unsent.messages:
            self.mark_suspect()
        return unsent

    async def _send(self, m: Outgoing) -> asyncio.Future[Any]:
        partition = m.partition
        if partition is None and m.key is not None:
            partition = self._partition_of(m.topic, m.key)
        future: asyncio.Future[Any] = await self._producer.send(
            m.topic, m.value, key=m.key, headers=m.headers, partition=partition
        )
        return future


def key_hash(key: bytes) -> int:
    """The hash Kafka's default partitioner takes a key's partition from (positive murmur2)."""
    return int(murmur2(key)) & 0x7FFFFFFF


def key_partition(key: bytes, partitions: Collection[int]) -> int:
    """The partition the producer puts messages keyed `key` on, among a topic's partitions."""
    ordered = sorted(partitions)
    return ordered[key_hash(key) % len(ordered)]


class IdempotenceRefused(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """`kafka.idempotent: true`, and the cluster gives out no producer ids."""

    def __init__(self, error: str) -> None:
        super().__init__(
            f"the cluster refuses idempotent producers (InitProducerId: {error}); "
            "set kafka.idempotent: false or null"
        )


@dataclass(frozen=True)
class Unsent:
    """The messages of a `send_all` the broker did not acknowledge, and why (None: all were)."""

    messages: list[Outgoing]
    error: str | None


def _unsent(
    messages: Sequence[Outgoing], sent: list[asyncio.Future[Any] | None], error: str | None
) -> Unsent:
    """The messages without an acknowledgement, in their order."""
    unsent: list[Outgoing] = []
    for index, message in enumerate(messages):
        future = sent[index] if index < len(sent) else None
        if future is None or not future.done():
            unsent.append(message)
            if future is not None:
                future.add_done_callback(_retrieve)
        elif future.cancelled() or future.exception() is not None:
            unsent.append(message)
            error = error or f"the broker refused the message: {_error_name(future)}"
    return Unsent(unsent, error if unsent else None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late acknowledgement's failure as seen (it was already counted as unsent)."""
    if not future.cancelled():
        future.exception()


def _error_name(future: asyncio.Future[Any]) -> str:
    exc = None if future.cancelled() else future.exception()
    return type(exc).__name__ if exc is not None else "cancelled"
