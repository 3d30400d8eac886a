"""What `router console` remembers of the topics: the records of the most recently active
meetings, bounded twice (meetings, and records per meeting), so that a console left open for
months holds no more than its configuration allows.

Records arrive keyed by meeting id from the four topics a story is told from, in any order
across partitions and topics (a partition's history is read before the next one's), and
possibly twice (a partition read whole for a meeting page overlaps what the live reader
brought): each is kept once, by its topic, partition and offset. "Recent" is by the time of a
meeting's latest record; beyond `max_meetings` meetings, or `max_total` records in all, the
meetings longest quiet are forgotten, and beyond `max_records` a meeting forgets the records
that came first (and says so).

Pure: no I/O, no clock. The story itself is `router.core.story.build_story`'s.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from router.core.story import StoryRecord

RecordKey = tuple[str, int, int]


@dataclass
class MeetingRecords:
    """The records kept of one meeting, in arrival order, and what is known of their whole."""

    meeting_id: str
    records: dict[RecordKey, StoryRecord] = field(default_factory=dict)
    # Set once the meeting's partition was read whole (it need not be read again).
    read_whole: bool = False
    # Set once records of the meeting had to be forgotten (its story lacks its beginning).
    truncated: bool = False
    # Whether a record of the meetings topic was seen (only those meetings are listed).
    on_meetings_topic: bool = False
    # Changes with every record kept, so that a derived story can be cached against it.
    version: int = 0
    last_timestamp_ms: int = 0


class MeetingMemory:
    """The bounded records of recent meetings."""

    def __init__(
        self,
        *,
        meetings_topic: str,
        max_meetings: int,
        max_records: int,
        max_total: int | None = None,
    ) -> None:
        self._meetings_topic = meetings_topic
        self.max_meetings = max_meetings
        self._max_records = max_records
        self._max_total = max_total if max_total is not None else max_meetings * max_records
        self.total = 0
        self._meetings: dict[str, MeetingRecords] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self._meetings)

    def get(self, meeting_id: str) -> MeetingRecords | None:
        """The records of a meeting, if it is remembered."""
        return self._meetings.get(meeting_id)

    def add(self, meeting_id: str, record: StoryRecord) -> bool:
        """Keep one record of a meeting; False when it was already kept."""
        meeting = self._meetings.get(meeting_id)
        if meeting is None:
            if len(self._meetings) >= self.max_meetings:
                self._forget_quietest()
            meeting = self._meetings[meeting_id] = MeetingRecords(meeting_id)
        key = (record.topic, record.partition, record.offset)
        if key in meeting.records:
            return False
        meeting.records[key] = record
        self.total += 1
        if len(meeting.records) > self._max_records:
            del meeting.records[next(iter(meeting.records))]
            self.total -= 1
            meeting.truncated = True
        meeting.on_meetings_topic |= record.topic == self._meetings_topic
        meeting.last_timestamp_ms = max(meeting.last_timestamp_ms, record.timestamp_ms)
        meeting.version += 1
        self.version += 1
        while self.total > self._max_total and len(self._meetings) > 1:
            self._forget_quietest(sparing=meeting_id)
        return True

    def _forget_quietest(self, sparing: str | None = None) -> None:
        others = (m for m in self._meetings.values() if m.meeting_id != sparing)
        quiet = min(others, key=_last_time)
        self.total -= len(quiet.records)
        del self._meetings[quiet.meeting_id]

    def add_whole(self, meeting_id: str, records: Iterable[StoryRecord]) -> MeetingRecords | None:
        """Keep a meeting's records read from its whole partition, and remember that it was read;
        None when nothing is known of it, which is not remembered (a search for made-up ids must
        not push real meetings out)."""
        for record in records:
            self.add(meeting_id, record)
        meeting = self._meetings.get(meeting_id)
        if meeting is not None:
            meeting.read_whole = True
        return meeting

    def recent(self, limit: int) -> Iterator[MeetingRecords]:
        """Up to `limit` meetings seen on the meetings topic, the most recently active first."""
        listed = (meeting for meeting in self._meetings.values() if meeting.on_meetings_topic)
        yield from heapq.nlargest(limit, listed, key=_last_time)


def _last_time(meeting: MeetingRecords) -> int:
    return meeting.last_timestamp_ms
