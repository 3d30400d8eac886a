"""The meeting states of the partitions a worker owns: held in memory, restored from the
compacted state topic when partitions are assigned, dropped when they are revoked, and
tombstoned once a meeting is over and its grace period has passed.

A meeting's state lives on the state topic's partition with the number of its webhooks'
partition, so that the owner of a webhooks partition restores exactly its meetings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Container, Iterable, Iterator

from router.clock import monotonic
from router.config import KafkaConfig
from router.core.meeting_state import MeetingState
from router.kafka import Consumed, Outgoing, read_partitions
from router.metrics import Metrics

log = logging.getLogger("router.worker")


class MeetingStates:
    """Meeting id to state, with the partition each belongs to."""

    def __init__(self, kafka: KafkaConfig, bootstrap: str, metrics: Metrics) -> None:
        self._kafka = kafka
        self._bootstrap = bootstrap
        self._metrics = metrics
        self._states: dict[str, MeetingState] = {}
        self._partition_of: dict[str, int] = {}
        # Meetings whose session is over, and when that was last seen (see `due`).
        self._ended: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._states)

    def get(self, meeting_id: str | None) -> MeetingState | None:
        """The meeting's state, or None when it has none (yet)."""
        return self._states.get(meeting_id) if meeting_id is not None else None

    def put(self, meeting_id: str, partition: int, state: MeetingState) -> None:
        """The meeting's state from now on (in memory; `message` is its record)."""
        self._states[meeting_id] = state
        self._partition_of[meeting_id] = partition
        if state.is_over:
            self._ended[meeting_id] = monotonic()
        else:
            self._ended.pop(meeting_id, None)

    def message(self, meeting_id: str, partition: int, state: MeetingState | None) -> Outgoing:
        """The state topic's record of a meeting's state; None gives its tombstone."""
        value = state.to_json() if state is not None else None
        key = meeting_id.encode()
        return Outgoing(self._kafka.topics.state, key, value, [], partition=partition)

    async def restore(self, partitions: list[int]) -> int:
        """Read the newest state of every meeting of these partitions from the state topic,
        a batch at a time with the event loop free in between (webhooks keep being answered
        during a long restore); how many meetings came back."""
        restored: dict[str, tuple[int, MeetingState]] = {}
        topic = self._kafka.topics.state
        async for batch in read_partitions(self._kafka, self._bootstrap, topic, partitions):
            for record in batch:
                if record.key is None:
                    continue
                meeting_id = record.key.decode("utf-8", "replace")
                state = self._decode(record)
                if state is None:
                    restored.pop(meeting_id, None)
                else:
                    restored[meeting_id] = (record.partition, state)
            await asyncio.sleep(0)
        for meeting_id, (partition, state) in restored.items():
            self.put(meeting_id, partition, state)
        return len(restored)

    def _decode(self, record: Consumed) -> MeetingState | None:
        """A state record's meeting state; None for a tombstone, or for a corrupt record,
        which is counted and logged rather than left to stop the partition."""
        if record.value is None:
            return None
        try:
            return MeetingState.from_json(record.value)
        except ValueError as exc:
            self._metrics.state_records_invalid.inc()
            log.warning(
                "state record skipped: it cannot be decoded",
                extra={
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": type(exc).__name__,
                },
            )
            return None

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the meetings of partitions this worker no longer owns."""
        gone = set(partitions)
        for meeting_id in [m for m, p in self._partition_of.items() if p in gone]:
            self.forget(meeting_id)

    def due(self, grace: float, *, busy: Container[str], owned: Collection[int]) -> list[str]:
        """Meetings over for longer than `grace` seconds, of the `owned` partitions, with no
        event `busy` in flight: their state may be tombstoned."""
        cutoff = monotonic() - grace
        return [
            m
            for m, since in self._ended.items()
            if since <= cutoff and m not in busy and self._partition_of.get(m) in owned
        ]

    def items(self) -> Iterator[tuple[str, int, MeetingState]]:
        """Every meeting held: its id, partition and state."""
        for meeting_id, state in self._states.items():
            yield meeting_id, self._partition_of[meeting_id], state

    def partition_of(self, meeting_id: str) -> int:
        """The partition of a meeting held here."""
        return self._partition_of[meeting_id]

    def forget(self, meeting_id: str) -> None:
        """Drop a meeting from memory."""
        self._states.pop(meeting_id, None)
        self._partition_of.pop(meeting_id, None)
        self._ended.pop(meeting_id, None)
