"""The only module that imports aiokafka: producing, topic administration and consuming.

aiokafka has no type hints, so it is fenced in here behind small typed classes. The producer
uses `acks=all` and, against a real cluster, idempotence. A memory-only broker that restarts
comes back empty while a producer's cached metadata still points at it, and it would then
acknowledge messages for topics that no longer exist. So any broken connection or failed send
marks the log "suspect", and the next publish first checks (and if allowed re-creates) the
topics before it sends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from router.config import KafkaConfig
from router.errors import PublishError

log = logging.getLogger("router.kafka")

Headers = list[tuple[str, bytes]]
# aiokafka keeps one produce request in flight per broker and fills one batch per partition
# meanwhile; a sender that finds its batch full waits for it to drain, and with many senders
# that wait (a timer and a wake-up each, for every sender, every round trip) costs more than
# the sending. A batch that holds everything arriving during one round trip avoids it.
PRODUCER_BATCH_BYTES = 1024 * 1024
# Keys whose partition hash is remembered (a meeting's key comes back for its webhook and for
# every record the worker writes about it); the table is emptied when full.
PARTITION_CACHE_KEYS = 16_384
# Messages handed over at once when reading a partition whole (see `read_partitions`).
RESTORE_BATCH = 1000
# What a broker that is down, restarting or refusing makes client calls raise.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KafkaError, OSError)


@dataclass(frozen=True)
class Record:
    """One consumed message, as plain values."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def client_options(config: KafkaConfig, bootstrap: str) -> dict[str, Any]:
    """Connection options shared by producer, consumer and admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": config.client_id,
        "security_protocol": config.security_protocol,
    }
    if config.sasl_mechanism:
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        if config.sasl_password is not None:
            options["sasl_plain_password"] = config.sasl_password.get_secret_value()
    if config.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        cafile = str(config.ssl_cafile) if config.ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    return options


@dataclass(frozen=True)
class Message:
    """One message to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None


class TopicAdmin:
    """Checks that the router's topics exist and creates the missing ones when allowed."""

    def __init__(self, config: KafkaConfig, bootstrap: str, topics: Sequence[str]) -> None:
        self._config = config
        self._options = client_options(config, bootstrap)
        self.topics = tuple(topics)
        self._admin: Any = None

    async def _client(self) -> Any:
        if self._admin is None:
            admin = AIOKafkaAdminClient(request_timeout_ms=5000, **self._options)
            await admin.start()
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        """Close the admin connection."""
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    async def missing(self) -> list[str]:
        """Topics of the router that the broker does not have (raises KafkaError/OSError)."""
        try:
            existing = set(await (await self._client()).list_topics())
        except (KafkaError, OSError):
            await self.close()  # a fresh connection next time, not a wedged one
            raise
        return [t for t in self.topics if t not in existing]

    async def ensure(self) -> list[str]:
        """Create missing topics if allowed; return those still missing."""
        missing = await self.missing()
        if not missing or not self._config.create_topics:
            return missing
        compacted = {self._config.topics.state}
        new = [
            NewTopic(
                name,
                self._config.partitions,
                self._config.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if name in compacted else None,
            )
            for name in missing
        ]
        try:
            await (await self._client()).create_topics(new, timeout_ms=10_000)
        except TopicAlreadyExistsError:
            pass  # another instance was quicker
        except KafkaError as exc:
            log.warning("could not create topics %s: %s", ", ".join(missing), exc)
        return await self.missing()


class Publisher:
    """Appends messages and waits for the broker's acknowledgement, within a deadline."""

    def __init__(self, config: KafkaConfig, bootstrap: str, admin: TopicAdmin) -> None:
        idempotent = (not config.embedded) if config.idempotent is None else config.idempotent
        self._options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": idempotent,
            "request_timeout_ms": int(max(config.ack_timeout_seconds, 1) * 1000) + 5000,
            "max_batch_size": PRODUCER_BATCH_BYTES,
            **client_options(config, bootstrap),
        }
        self._producer: Any = None
        self._admin = admin
        self._suspect = True  # nothing is trusted until the topics have been seen
        self._check_lock = asyncio.Lock()
        self._hashes: dict[bytes, int] = {}

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect (raises KafkaError/OSError when the broker cannot be reached)."""
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        client = producer.client
        original = client._on_connection_closed

        def on_closed(conn: Any, reason: Any) -> None:
            if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
                self.mark_suspect()
            original(conn, reason)

        client._on_connection_closed = on_closed
        self._producer = producer

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
                if partition is None and key is not None:
                    partition = self._partition_of(topic, key)
                future = await self._producer.send(
                    topic, value, key=key, headers=headers, partition=partition
                )
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
        partitions = self._producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            return None
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= PARTITION_CACHE_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        ordered = sorted(partitions)
        return int(ordered[hashed % len(ordered)])

    async def send_all(self, messages: Sequence[Message], timeout: float) -> Unsent:
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

    async def _send(self, m: Message) -> asyncio.Future[Any]:
        partition = m.partition
        if partition is None and m.key is not None:
            partition = self._partition_of(m.topic, m.key)
        future: asyncio.Future[Any] = await self._producer.send(
            m.topic, m.value, key=m.key, headers=m.headers, partition=partition
        )
        return future


@dataclass(frozen=True)
class Unsent:
    """The messages of a `send_all` the broker did not acknowledge, and why (None: all were)."""

    messages: list[Message]
    error: str | None


def _unsent(
    messages: Sequence[Message], sent: list[asyncio.Future[Any] | None], error: str | None
) -> Unsent:
    """The messages without an acknowledgement, in their order."""
    unsent: list[Message] = []
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

    async def fetch(self, timeout: float) -> list[Record]:
        """The next batch of messages (possibly empty)."""
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        return [_record(m) for messages in batches.values() for m in messages]

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


async def read_partitions(
    config: KafkaConfig,
    bootstrap: str,
    topic: str,
    partitions: Sequence[int],
    timeout: float = 30.0,
) -> AsyncIterator[list[Record]]:
    """Every message of some partitions, start to end as of now (restoring compacted state),
    a fetched batch at a time and in offset order within each partition: the caller handles
    each batch and lets go of it, so that a long topic is neither held whole nor decoded in
    one stretch of the event loop. `timeout` bounds each fetch that brings nothing."""
    if not partitions:
        return
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=RESTORE_BATCH,
        **client_options(config, bootstrap),
    )
    try:
        await consumer.start()
        parts = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            while await consumer.position(tp) < ends[tp]:
                async with asyncio.timeout(timeout):
                    batch = await consumer.getmany(tp, timeout_ms=500)
                yield [_record(m) for m in batch.get(tp, [])]
        # The embedded broker has been seen to report an end offset one short of its last
        # message; one more short read picks up whatever lies beyond it.
        tail = await consumer.getmany(*parts, timeout_ms=200)
        yield [_record(m) for messages in tail.values() for m in messages]
    finally:
        await consumer.stop()


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


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
        timestamp_ms=message.timestamp,
    )


class TopicReader:
    """Reads every partition of one topic without a consumer group (for `router tail`)."""

    def __init__(
        self, config: KafkaConfig, bootstrap: str, topic: str, *, from_beginning: bool
    ) -> None:
        self._topic = topic
        self._from_beginning = from_beginning
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, group_id=None, **client_options(config, bootstrap)
        )

    async def __aenter__(self) -> TopicReader:
        try:
            await self._consumer.start()
            known = await self._consumer.topics()
        except BaseException:
            await self._consumer.stop()
            raise
        if self._topic not in known:
            await self._consumer.stop()
            raise LookupError(f"topic {self._topic!r} does not exist on the broker")
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        parts = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(parts)
        if self._from_beginning:
            await self._consumer.seek_to_beginning(*parts)
        else:
            await self._consumer.seek_to_end(*parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def fetch(self, timeout: float) -> list[Record]:
        """The next messages in arrival order per partition (possibly none)."""
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        return [_record(m) for messages in batches.values() for m in messages]
