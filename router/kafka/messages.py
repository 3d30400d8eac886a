"""The three kinds of message the router handles, as plain values: a `Consumed` message read
from a topic, an `Outgoing` message to produce, and their `Headers`. (The records the router
writes *inside* messages are `router.core.records.Record`.) Also what a batch send left
`Unsent`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
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


@dataclass(frozen=True)
class Unsent:
    """The messages of a `send_all` the broker did not acknowledge, and why (None: all were)."""

    messages: list[Outgoing]
    error: str | None


def unsent_of(
    messages: Sequence[Outgoing],
    sent: list[asyncio.Future[Any] | None],
    error: str | None,
    on_failure: Callable[[BaseException], None],
) -> Unsent:
    """The messages without an acknowledgement, in their order; `on_failure` hears of each
    error the broker answered."""
    unsent: list[Outgoing] = []
    for index, message in enumerate(messages):
        future = sent[index] if index < len(sent) else None
        if future is None or not future.done():
            unsent.append(message)
            if future is not None:
                future.add_done_callback(_retrieve)
        elif future.cancelled() or future.exception() is not None:
            unsent.append(message)
            failure = None if future.cancelled() else future.exception()
            if failure is not None:
                on_failure(failure)
            error = error or f"the broker refused the message: {_error_name(future)}"
    return Unsent(unsent, error if unsent else None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late acknowledgement's failure as seen (it was already counted as unsent)."""
    if not future.cancelled():
        future.exception()


def _error_name(future: asyncio.Future[Any]) -> str:
    exc = None if future.cancelled() else future.exception()
    return type(exc).__name__ if exc is not None else "cancelled"
