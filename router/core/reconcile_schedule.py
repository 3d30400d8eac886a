"""When reconciliation may check which meeting: a round per meeting every interval, spread over
the interval, and calls paced to stay under a budget per minute. Pure: every method is handed
`now` (monotonic seconds), so a test runs hours of schedule on a fake clock.

Spread. A meeting's first round is at `now + offset`, where the offset is the meeting id's
place in the interval (a hash, so it does not depend on when the meeting was first seen): the
2,000 meetings a restarted worker restores at once are not all checked in its first second.
Each later round is one interval after the previous round was *served*, not after it was due,
so a backlog (more rounds than the budget allows) never snowballs.

Budget. `CallPacer` lets one call through every `60 / per_minute` seconds and never two
closer together, so any 60-second window holds at most `per_minute` calls: the limit holds
without a burst. `pause_until` stops every call until a time (a 429's `Retry-After`).
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterable


class CallPacer:
    """At most `per_minute` calls in any 60 seconds, evenly spaced."""

    def __init__(self, per_minute: int) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.spacing = 60.0 / per_minute
        self._next = float("-inf")
        self._paused_until = float("-inf")

    def next_at(self, now: float) -> float:
        """The earliest time, at `now` or later, a call may be made."""
        return max(now, self._next, self._paused_until)

    def take(self, now: float) -> bool:
        """Use the budget for a call made at `now`; False (and nothing used) when it is early."""
        if now < self.next_at(now):
            return False
        self._next = now + self.spacing
        return True

    def pause_until(self, until: float) -> None:
        """No call before `until` (a 429, or a failing RTK)."""
        self._paused_until = max(self._paused_until, until)


class RoundSchedule:
    """The meetings to check and when each one's next round is due."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, meeting_id: object) -> bool:
        return meeting_id in self._due

    def watch(self, meeting_ids: Iterable[str], now: float) -> None:
        """Check exactly these meetings from now on: new ones get their first round within the
        next interval, at their place in it; ones not named are dropped."""
        wanted = set(meeting_ids)
        for meeting_id in [m for m in self._due if m not in wanted]:
            del self._due[meeting_id]  # (its heap entry is skipped when it comes up)
        for meeting_id in wanted:
            if meeting_id not in self._due:
                self._set(meeting_id, now + self.offset(meeting_id))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(t, m) for m, t in self._due.items()]
            heapq.heapify(self._heap)

    def offset(self, meeting_id: str) -> float:
        """The meeting's place in the interval, the same on every instance and every run."""
        return (
            (zlib.crc32(meeting_id.encode("utf-8", "surrogatepass")) % 10_000)
            / 10_000
            * (self.interval)
        )

    def next_due(self) -> float | None:
        """When the earliest round is due, or None when no meeting is watched."""
        self._skip_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> str | None:
        """The most overdue meeting whose round is due at `now`, its next round set one interval
        from now; None when none is due."""
        self._skip_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, meeting_id = heapq.heappop(self._heap)
        self._set(meeting_id, now + self.interval)
        return meeting_id

    def _set(self, meeting_id: str, due: float) -> None:
        self._due[meeting_id] = due
        heapq.heappush(self._heap, (due, meeting_id))

    def _skip_stale(self) -> None:
        heap = self._heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
