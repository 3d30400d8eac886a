"""Meetings waiting on RTK: a meeting whose event needs an RTK call (a start retried for up to
`retry_seconds`, a preset look-up) is handed here, and holds back only its own later events.

Each waiting meeting has a lane: a task that finishes the waiting event, then the events of the
meeting that arrived meanwhile, in offset order, and ends when none is left; the meeting's
events are then handled inside their batches again. Other meetings, the batch and the commit
of the offsets before the waiting event are never held up (offsets complete out of order).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from router.core.offsets import PartitionOffsets
from router.envelope import Logged
from router.processing import Waiting

log = logging.getLogger("router.worker")


@dataclass(frozen=True)
class Entry:
    """A logged webhook and the offset tracker it was dispatched under (a partition whose
    log started again has a new one)."""

    logged: Logged
    tracker: PartitionOffsets

    @property
    def partition(self) -> int:
        return self.logged.message.partition

    def done(self) -> None:
        self.tracker.done(self.logged.message.offset)


# Finishes a waiting event once the batch it came in is published.
CarryOn = Callable[[Waiting, Entry, "asyncio.Future[None]"], Awaitable[None]]
# Handles one held event of a waiting meeting, RTK calls included.
Handle = Callable[[Entry], Awaitable[None]]


class WaitingMeetings:
    """The lanes of the meetings waiting on RTK."""

    def __init__(self, carry_on: CarryOn, handle: Handle) -> None:
        self._carry_on = carry_on
        self._handle = handle
        self._lanes: dict[str, deque[Entry]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.held = 0  # events in the lanes, the waiting ones included

    def __contains__(self, meeting_id: object) -> bool:
        return meeting_id in self._lanes

    def __len__(self) -> int:
        return len(self._lanes)

    def wait(self, waiting: Waiting, entry: Entry, published: asyncio.Future[None]) -> None:
        """Start the lane of a meeting whose event waits on RTK; `published` is done once the
        records of its batch (the meeting's earlier events among them) are acknowledged."""
        lane: deque[Entry] = deque()
        self._lanes[waiting.meeting_id] = lane
        self.held += 1
        task = asyncio.create_task(self._run(waiting, entry, lane, published))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def hold(self, meeting_id: str, entry: Entry) -> None:
        """Queue a later event of a waiting meeting."""
        self._lanes[meeting_id].append(entry)
        self.held += 1

    def cancel(self) -> None:
        """Stop every lane (shutdown: what is unfinished is replayed from the log)."""
        for task in list(self._tasks):
            task.cancel()

    async def _run(
        self,
        waiting: Waiting,
        entry: Entry,
        lane: deque[Entry],
        published: asyncio.Future[None],
    ) -> None:
        carried = False
        try:
            await self._carry_on(waiting, entry, published)
            carried = True
            self.held -= 1
            while lane:
                await self._handle(lane[0])  # (left in the lane until done: it is held)
                lane.popleft()
                self.held -= 1
        finally:
            self.held -= len(lane) + (not carried)
            del self._lanes[waiting.meeting_id]
