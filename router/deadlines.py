"""Deadlines for many waits of the same length, checked by one timer for all of them.

`asyncio.timeout` schedules a timer per wait and goes through a context manager: about 5 µs,
paid on every webhook's publish. Here a wait costs an entry in a queue per length (`start`),
and one timer per `resolution` expires the ones past due, at most `resolution` late, for as
long as any wait is open. An expired wait fails the future it was waiting on with
`TimeoutError` (its owner must not mind a future done by someone else: aiokafka's produce
futures are skipped when already done), or, when it was not waiting on a future, cancels its
task the way `asyncio.timeout` does (the task is uncancelled and sees `TimeoutError` through
`Wait.timed_out`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

RESOLUTION_SECONDS = 0.05


class Wait:
    """One wait: the task that waits, its due time, and the future it is waiting on."""

    __slots__ = ("due", "ended", "expired", "future", "task")

    def __init__(self, task: asyncio.Task[Any] | None, due: float) -> None:
        self.task = task
        self.due = due
        self.future: asyncio.Future[Any] | None = None
        self.expired = False
        self.ended = False

    def expire(self) -> None:
        self.expired = True
        if self.future is not None:
            if not self.future.done():
                self.future.set_exception(TimeoutError())
        elif self.task is not None:
            self.task.cancel()

    def end(self) -> None:
        """The wait is over (whatever its outcome): it no longer expires, nor holds its task."""
        self.ended = True
        self.task = self.future = None

    def timed_out(self) -> bool:
        """Whether a `CancelledError` the waiting task caught came from this deadline alone
        (then the task is uncancelled); False means it must be raised on."""
        return self.expired and self.task is not None and self.task.uncancel() == 0


class Deadlines:
    """The open waits, one queue per length (each in due order), and the timer that checks
    them."""

    def __init__(self, resolution: float = RESOLUTION_SECONDS) -> None:
        self._resolution = resolution
        self._queues: dict[float, deque[Wait]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def start(self, seconds: float) -> Wait:
        """A wait of the current task that expires `seconds` from now; `end` it when done."""
        loop = asyncio.get_running_loop()
        wait = Wait(asyncio.current_task(), loop.time() + seconds)
        queue = self._queues.get(seconds)
        if queue is None:
            queue = self._queues[seconds] = deque()
        queue.append(wait)
        if self._timer is None:
            self._timer = loop.call_later(self._resolution, self._check)
        return wait

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for queue in self._queues.values():
            while queue and (queue[0].ended or queue[0].due <= now):
                wait = queue.popleft()
                if not wait.ended:
                    wait.expire()
        self._timer = None
        if any(self._queues.values()):
            self._timer = loop.call_later(self._resolution, self._check)

    def close(self) -> None:
        """Stop the timer (the open waits no longer expire)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
