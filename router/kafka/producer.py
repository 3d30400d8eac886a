"""Producing. The producer uses `acks=all` and, against a real cluster, idempotence when the
cluster offers it (see `router.kafka.idempotence`); a producer wedged by an error is replaced
by a fresh one. What it believes of the broker's answers after a broken connection or a broker
that came back empty is `router.kafka.trust`; where a message goes, `router.kafka.placement`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, NoReturn

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from router.config import KafkaConfig
from router.deadlines import Deadlines
from router.errors import PublishError
from router.kafka.client import TopicAdmin, client_options
from router.kafka.idempotence import (
    WEDGING,
    IdempotenceRefused,
    is_refusal,
    refusal_note,
    wanted,
)
from router.kafka.messages import Headers, Outgoing, Unsent, unsent_of
from router.kafka.placement import Placement
from router.kafka.trust import BROKE_IN_FLIGHT, LogTrust
from router.metrics import Metrics

log = logging.getLogger("router.kafka")

# aiokafka keeps one produce request in flight per broker and fills one batch per partition
# meanwhile; a sender that finds its batch full waits for it to drain, and with many senders
# that wait (a timer and a wake-up each, for every sender, every round trip) costs more than
# the sending. A batch that holds everything arriving during one round trip avoids it.
PRODUCER_BATCH_BYTES = 1024 * 1024
# How long a wedged producer's batches may take to settle before they are failed (their
# senders answer 503 or send again; nothing goes to the fresh producer before that).
RETIRE_SECONDS = 2.0


class Publisher:
    """Appends messages and waits for the broker's acknowledgement, within a deadline."""

    def __init__(
        self,
        config: KafkaConfig,
        bootstrap: str,
        admin: TopicAdmin,
        *,
        max_message_bytes: int = 1024 * 1024,
        metrics: Metrics | None = None,
    ) -> None:
        self._idempotence = wanted(config)
        self._metrics = metrics or Metrics()
        self._options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": self._idempotence != "off",
            "request_timeout_ms": int(max(config.ack_timeout_seconds, 1) * 1000) + 5000,
            "max_batch_size": PRODUCER_BATCH_BYTES,
            # (aiokafka's default, 1 MiB, would refuse a body of the receiver's full size once
            # its headers and framing are added)
            "max_request_size": max(max_message_bytes, 1024 * 1024),
            **client_options(config, bootstrap),
        }
        self._producer: Any = None
        # The cluster's answer when it refused producer ids (a required producer is then not
        # asked for again until restarted).
        self._refused: str | None = None
        # The error that wedged the producer, until a fresh one replaces it.
        self._wedged: str | None = None
        self._connect_lock = asyncio.Lock()
        self.trust = LogTrust(admin)
        self._deadlines = Deadlines()
        self._placement = Placement()

    @property
    def started(self) -> bool:
        """Whether the producer is connected."""
        return self._producer is not None

    @property
    def direct_appends(self) -> int:
        """How many messages went straight into an open batch (`router.kafka.placement`)."""
        return self._placement.direct_appends

    @property
    def idempotence_note(self) -> str | None:
        """Why the producer runs without the idempotence `auto` asked for (None: it does not)."""
        if self._refused is None or self._idempotence != "auto":
            return None
        return refusal_note(self._refused)

    async def start(self) -> None:
        """Connect (raises KafkaError/OSError when the broker cannot be reached, and
        `IdempotenceRefused` when idempotence is required and the cluster refuses it)."""
        async with self._connect_lock:
            if self._producer is None:
                self._install(await self._connected())

    async def _connected(self) -> Any:
        if self._refused is not None and self._idempotence == "on":
            raise IdempotenceRefused(self._refused)  # (refused once: no new attempt)
        try:
            return await self._started(self._options)
        except KafkaError as exc:
            # A transient answer (time-out, coordinator loading, no broker) is raised, to be
            # tried again by the next readiness probe; only a definitive one is a refusal.
            if not self._options["enable_idempotence"] or not is_refusal(exc):
                raise
            self._refused = type(exc).__name__
        self._metrics.idempotence_refused.set(1)
        if self._idempotence == "on":
            raise IdempotenceRefused(self._refused) from None
        log.warning(
            "%s (kafka.idempotent: false skips the attempt)",
            refusal_note(self._refused),
            extra={"error": self._refused},
        )
        self._options = {**self._options, "enable_idempotence": False}
        return await self._started(self._options)

    def _install(self, producer: Any) -> None:
        client = producer.client
        self.trust.watch(client)
        client.cluster.add_listener(lambda _: self._placement.forget_partitions())
        self._placement.forget_partitions()
        self._producer = producer
        self._wedged = None  # (a fresh producer is not stuck)
        self._metrics.producer_idempotent.set(1 if self._options["enable_idempotence"] else 0)

    def _failed(self, exc: BaseException) -> None:
        """Note a failed send: the log becomes suspect, and a wedging error dooms the producer."""
        self.trust.mark_suspect()
        if isinstance(exc, WEDGING) and self._wedged is None:
            self._wedged = type(exc).__name__

    async def _heal(self) -> None:
        """Replace a wedged producer: its batches settle (or fail) first, so that nothing sent
        through the fresh one overtakes them, and senders meanwhile wait here."""
        async with self._connect_lock:
            error = self._wedged
            if error is None or self._producer is None:
                return
            old, self._producer = self._producer, None
            log.warning(
                "the producer is stuck on %s; replacing it with a fresh one",
                error,
                extra={"error": error},
            )
            try:
                async with asyncio.timeout(RETIRE_SECONDS):
                    await old.flush()
            except TimeoutError:
                old._message_accumulator.fail_all(KafkaError(f"producer replaced after {error}"))
            await asyncio.shield(old.stop())
            self._metrics.inc(self._metrics.producers_replaced, error)
            self._install(await self._started(self._options))

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
        self._deadlines.close()

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
        wait = self._deadlines.start(timeout)
        try:
            if self._wedged is not None:
                await self._heal()
            if self._producer is None:
                raise PublishError("not connected to the broker")
            if self.trust.suspect:
                missing = await self.trust.verify_topics()
                if missing:
                    raise PublishError(f"topics missing on the broker: {', '.join(missing)}")
            breaks = self.trust.breaks
            wait.future = future = await self._send_to(topic, key, value, headers, partition)
            metadata = await future
            if self.trust.breaks != breaks:
                raise PublishError(BROKE_IN_FLIGHT)
        except asyncio.CancelledError:
            if not wait.timed_out():
                raise
            self._no_acknowledgement(timeout)
        except TimeoutError:  # (the deadline failed the acknowledgement's future)
            self._no_acknowledgement(timeout)
        except (KafkaError, OSError) as exc:
            self._failed(exc)
            raise PublishError(f"the broker refused the message: {type(exc).__name__}") from None
        finally:
            wait.end()
        return int(metadata.partition), int(metadata.offset)

    def _no_acknowledgement(self, timeout: float) -> NoReturn:
        self.trust.mark_suspect()
        raise PublishError(f"no acknowledgement from the broker within {timeout} s") from None

    async def send_all(self, messages: Sequence[Outgoing], timeout: float) -> Unsent:
        """Send every message, then wait once for all their acknowledgements, all within one
        deadline; what was not acknowledged comes back, to be sent again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent: list[asyncio.Future[Any] | None] = []
        error: str | None = None
        breaks = self.trust.breaks
        try:
            async with asyncio.timeout_at(deadline):
                if self._wedged is not None:
                    await self._heal()
                if self._producer is None:
                    return Unsent(list(messages), "not connected to the broker")
                if self.trust.suspect:
                    missing = await self.trust.verify_topics()
                    if missing:
                        return Unsent(list(messages), f"topics missing: {', '.join(missing)}")
                for m in messages:  # (one at a time: what was sent before a failure counts)
                    future = await self._send_to(m.topic, m.key, m.value, m.headers, m.partition)
                    sent.append(future)
        except TimeoutError:
            error = f"no acknowledgement from the broker within {timeout} s"
        except (KafkaError, OSError) as exc:
            self._failed(exc)
            error = f"the broker refused the message: {type(exc).__name__}"
        waiting = [f for f in sent if f is not None]
        if waiting and error is None:
            # The last message's acknowledgement first: by then nearly all the others have
            # theirs (batches are answered in the order they were sent), and waiting on one
            # future costs a callback where waiting on all costs one for each message.
            late = await _still_open(waiting[-1:], deadline - loop.time())
            late = late or await _still_open(
                [f for f in waiting if not f.done()], deadline - loop.time()
            )
            if late:
                error = f"no acknowledgement from the broker within {timeout} s"
        unsent = unsent_of(messages, sent, error, self._failed)
        if sent and self.trust.breaks != breaks:
            unsent = Unsent(list(messages), BROKE_IN_FLIGHT)
        if unsent.messages:
            self.trust.mark_suspect()
        return unsent

    async def _send_to(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None,
    ) -> asyncio.Future[Any]:
        if partition is None and key is not None:
            partition = self._placement.partition_of(self._producer, topic, key)
        if partition is not None:
            appended = self._placement.append(
                self._producer, topic, partition, (key, value, headers)
            )
            if appended is not None:
                return appended
        future: asyncio.Future[Any] = await self._producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
        return future


async def _still_open(futures: list[asyncio.Future[Any]], seconds: float) -> bool:
    """Whether some of `futures` are still not done after waiting up to `seconds` for them."""
    if not futures:
        return False
    _, pending = await asyncio.wait(futures, timeout=max(seconds, 0.0))
    return bool(pending)
