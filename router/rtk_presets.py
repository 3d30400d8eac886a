"""The per-meeting cache of participant presets that the RTK client keeps.

Webhooks never carry a joiner's preset, so it is looked up in the meeting's participant list.
A list is fetched once and kept (least recently used meetings are dropped beyond a bound); a
participant missing from it triggers a refetch, since they may have been added since, but at
most once per `refetch_seconds` per meeting so that a stream of unknown joiners cannot turn
into a stream of listings: a miss inside that window waits for its end (holding up only its own
meeting) rather than answering "no preset" for somebody who was just added.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class _Participant(Protocol):
    @property
    def custom_participant_id(self) -> str: ...

    @property
    def preset_name(self) -> str | None: ...


Fetch = Callable[[str], Awaitable[Sequence[_Participant]]]


@dataclass
class _Meeting:
    """One meeting's cached presets; the lock keeps concurrent misses to one fetch."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    presets: dict[str, str | None] = field(default_factory=dict)
    fetched_at: float | None = None


class PresetCache:
    """Presets by meeting and custom participant id, filled by `fetch` on a miss."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        max_meetings: int,
        refetch_seconds: float,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._fetch = fetch
        self._sleep = sleep
        self._max = max(1, max_meetings)
        self._refetch = refetch_seconds
        self._monotonic = monotonic
        self._meetings: OrderedDict[str, _Meeting] = OrderedDict()

    async def preset_of(self, meeting_id: str, custom_participant_id: str) -> str | None:
        """The participant's preset; None when the meeting's list does not name them."""
        entry = self._entry(meeting_id)
        if custom_participant_id in entry.presets:
            return entry.presets[custom_participant_id]
        async with entry.lock:
            # Another coroutine may have fetched while this one waited for the lock.
            if custom_participant_id in entry.presets:
                return entry.presets[custom_participant_id]
            wait = self._wait_before_fetch(entry)
            if wait > 0:
                await self._sleep(wait)
            participants = await self._fetch(meeting_id)
            entry.presets = {p.custom_participant_id: p.preset_name for p in participants}
            entry.fetched_at = self._monotonic()
        return entry.presets.get(custom_participant_id)

    def forget(self, meeting_id: str) -> None:
        """Drop one meeting's presets."""
        self._meetings.pop(meeting_id, None)

    def __len__(self) -> int:
        return len(self._meetings)

    def _entry(self, meeting_id: str) -> _Meeting:
        entry = self._meetings.get(meeting_id)
        if entry is None:
            entry = self._meetings[meeting_id] = _Meeting()
            while len(self._meetings) > self._max:
                self._meetings.popitem(last=False)
        else:
            self._meetings.move_to_end(meeting_id)
        return entry

    def _wait_before_fetch(self, entry: _Meeting) -> float:
        if entry.fetched_at is None:
            return 0.0
        return max(0.0, entry.fetched_at + self._refetch - self._monotonic())
