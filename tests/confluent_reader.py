"""Reading topics with confluent-kafka (librdkafka, the client most other languages' Kafka
libraries wrap), the way a downstream consumer outside Python would see the router's output.

`read_topics` returns every message of some topics, from the beginning to the end as of the
call. It assigns partitions explicitly (`assign()`) instead of joining a consumer group: it
commits nothing, never disturbs the router's group, and does not depend on the broker's group
coordination (a group subscribe hangs against the embedded broker). The end is where the
partition's high watermark was and, past it, the first `idle` seconds without a message: the
embedded broker has been seen to report a high watermark one short of the last message.
The client is blocking: call it from async code through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from router.clock import monotonic


@dataclass(frozen=True)
class Message:
    """One message as confluent-kafka delivered it, as plain values."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        """A header's value as text (the first of that name), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


def read_topics(
    bootstrap: str, topics: Sequence[str], *, timeout: float = 30.0, idle: float = 1.0
) -> dict[str, list[Message]]:
    """Every message of each topic (partition by partition, in offset order)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "rtk-router-tests-reader",  # required by the client; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                raise LookupError(f"topic {topic!r} is not on the broker")
            for partition in described.partitions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout
                )
                ends[(topic, partition)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        found: dict[str, list[Message]] = {topic: [] for topic in topics}
        behind = {where for where, end in ends.items() if end > 0}
        deadline = monotonic() + timeout
        quiet_since = monotonic()
        while behind or monotonic() - quiet_since < idle:
            if monotonic() > deadline:
                raise TimeoutError(f"messages still missing from {sorted(behind)}")
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            quiet_since = monotonic()
            where, offset = (message.topic() or "", message.partition() or 0), message.offset()
            assert offset is not None
            found[where[0]].append(
                Message(
                    topic=where[0],
                    partition=where[1],
                    offset=offset,
                    key=_bytes(message.key()),
                    value=_bytes(message.value()),
                    headers=_headers(message.headers()),
                )
            )
            if offset + 1 >= ends[where]:
                behind.discard(where)
        for messages in found.values():
            messages.sort(key=lambda m: (m.partition, m.offset))
        return found
    finally:
        consumer.close()


def _headers(
    headers: dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None,
) -> tuple[tuple[str, bytes], ...]:
    """A message's headers in order (consumed messages give a list of pairs)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else headers or []
    return tuple((name, _bytes(value) or b"") for name, value in pairs)


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
