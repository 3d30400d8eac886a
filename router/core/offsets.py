"""Which offset of a partition may be committed while its messages finish out of order.

Messages of different meetings are processed concurrently, so a later offset can be done before
an earlier one. Kafka commits one position per partition, "everything before this is done",
so the commit point is the lowest offset still in flight, or one past the highest dispatched.
"""

from __future__ import annotations

import heapq


class PartitionOffsets:
    """In-flight offsets of one partition and the position that is safe to commit."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._heap: list[int] = []
        self._next: int | None = None  # one past the highest offset dispatched
        self._committed: int | None = None

    def dispatched(self, offset: int) -> None:
        """A message was handed out for processing."""
        self._pending.add(offset)
        heapq.heappush(self._heap, offset)
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def done(self, offset: int) -> None:
        """A message's effects and publications are acknowledged."""
        self._pending.discard(offset)
        while self._heap and self._heap[0] not in self._pending:
            heapq.heappop(self._heap)

    @property
    def in_flight(self) -> int:
        """How many dispatched messages are not done."""
        return len(self._pending)

    @property
    def committed_position(self) -> int | None:
        """The last position the broker accepted a commit of."""
        return self._committed

    def behind(self, offset: int) -> bool:
        """Whether `offset` lies before what this partition already handed out or committed:
        impossible on one log, so the log it comes from is a new one."""
        seen = max(self._next or 0, self._committed or 0)
        return offset < seen and offset not in self._pending

    def commit_position(self) -> int | None:
        """The offset to commit (next to read), or None when nothing new is safe to commit."""
        if self._next is None:
            return None
        position = self._heap[0] if self._heap else self._next
        if self._committed is not None and position <= self._committed:
            return None
        return position

    def committed(self, position: int) -> None:
        """The broker accepted a commit of `position`."""
        self._committed = position
