"""The three kinds of message the router handles, as plain values: a `Consumed` message read
from a topic, an `Outgoing` message to produce, and their `Headers`. (The records the router
writes *inside* messages are `router.core.records.Record`.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Consumed:
    """One message read from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(frozen=True)
class Outgoing:
    """One message to produce (a partition of None: the key's)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int | None = None


def consumed(message: Any) -> Consumed:
    """An aiokafka message as a `Consumed`."""
    return Consumed(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        # (aiokafka hands header values out as bytes already)
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )
