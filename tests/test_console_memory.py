"""The console's bounded memory of recent meetings (`router.core.meeting_memory`)."""

from __future__ import annotations

import pytest

from router.core.meeting_memory import MeetingMemory
from router.core.story import StoryRecord


def record(topic: str, offset: int, time: int, meeting_id: str = "m") -> StoryRecord:
    return StoryRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=time,
        headers={},
        value=b"{}",
        key=meeting_id,
    )


def memory(meetings: int = 3, records: int = 5) -> MeetingMemory:
    return MeetingMemory(meetings_topic="meetings", max_meetings=meetings, max_records=records)


def test_a_record_is_kept_once() -> None:
    seen = memory()
    assert seen.add("m", record("meetings", 1, 10))
    assert not seen.add("m", record("meetings", 1, 10))
    assert seen.add("m", record("decisions", 1, 11))  # (same offset, other topic)
    meeting = seen.get("m")
    assert meeting is not None
    assert len(meeting.records) == 2
    assert meeting.version == 2


def test_the_meetings_longest_quiet_are_forgotten_first() -> None:
    seen = memory(meetings=3)
    # Arrival order is not time order: a partition's history is read before the next one's.
    for offset, (meeting_id, time) in enumerate([("a", 50), ("b", 10), ("c", 30), ("d", 20)]):
        seen.add(meeting_id, record("meetings", offset, time, meeting_id))
    assert len(seen) == 3
    assert seen.get("b") is None
    assert [m.meeting_id for m in seen.recent(10)] == ["a", "c", "d"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(1, ["late"]), (2, ["late", "early"]), (10, ["late", "early"])],
    ids=["one", "two", "more-than-there-are"],
)
def test_recent_lists_only_meetings_seen_on_the_meetings_topic(
    limit: int, expected: list[str]
) -> None:
    seen = memory(meetings=10)
    seen.add("early", record("meetings", 1, 10, "early"))
    seen.add("late", record("meetings", 2, 20, "late"))
    seen.add("decided-only", record("decisions", 3, 30, "decided-only"))
    assert [m.meeting_id for m in seen.recent(limit)] == expected


def test_a_meeting_keeps_its_latest_records_and_says_it_lost_some() -> None:
    seen = memory(records=3)
    for offset in range(5):
        seen.add("m", record("decisions", offset, offset))
    meeting = seen.get("m")
    assert meeting is not None
    assert [r.offset for r in meeting.records.values()] == [2, 3, 4]
    assert meeting.truncated


def test_a_partition_read_whole_is_merged_with_what_was_followed() -> None:
    seen = memory(records=10)
    seen.add("m", record("meetings", 7, 70))
    assert not seen.get("m").read_whole  # type: ignore[union-attr]
    whole = [record("meetings", offset, offset * 10) for offset in range(8)]
    meeting = seen.add_whole("m", whole)
    assert meeting is not None
    assert meeting.read_whole
    assert not meeting.truncated
    assert sorted(r.offset for r in meeting.records.values()) == list(range(8))


def test_a_meeting_nothing_is_known_of_is_not_remembered() -> None:
    seen = memory(meetings=1)
    seen.add("real", record("meetings", 1, 10, "real"))
    assert seen.add_whole("made-up", []) is None
    assert seen.get("real") is not None
    assert len(seen) == 1


def test_all_records_together_stay_within_their_bound() -> None:
    seen = MeetingMemory(meetings_topic="meetings", max_meetings=10, max_records=5, max_total=6)
    for offset in range(3):
        seen.add("old", record("meetings", offset, 10 + offset, "old"))
    for offset in range(3):
        seen.add("mid", record("meetings", 10 + offset, 20 + offset, "mid"))
    assert seen.total == 6
    seen.add("new", record("meetings", 20, 30, "new"))
    assert seen.get("old") is None  # (the quietest goes, however many records it had)
    assert seen.total == 4
    # A meeting is never pushed out by its own records: it loses its oldest instead.
    for offset in range(21, 30):
        seen.add("new", record("meetings", offset, offset + 10, "new"))
    assert [m.meeting_id for m in seen.recent(10)] == ["new"]
    assert seen.total == 5
