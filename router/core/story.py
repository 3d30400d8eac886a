"""A meeting's story (`router why`, the console): the records of the meetings, decisions,
recordings and dead-letter topics about one meeting, in time order, one `Entry` each, and the
`Verdict` they add up to: recorded, not recorded (and why), or failed. Pure: the shell reads
the topics and hands the raw messages in.

Entries are ordered by the time each message was appended (its Kafka timestamp), so the story
reads in the order the router wrote it; the records' own times are in `Entry.record`. A record
that cannot be read (not JSON, not the shape of its topic) is an entry of kind `malformed`
that says so: one bad message must not hide the rest of the story.

The verdict follows the story: a recording started or seen live makes it `recorded`; a failed
start, an errored recording or a dead-lettered event of a meeting not recorded makes it
`failed`; decisions that started nothing make it `not_recorded` until something better is known.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from router.clock import rfc3339
from router.core.delivery import meeting_key
from router.core.story_text import (
    dead_letter_summary,
    decision_summary,
    meeting_summary,
    not_matched,
    recording_summary,
    text_of,
)

Topic = Literal["meetings", "decisions", "recordings", "dead_letter"]
TOPICS: tuple[Topic, ...] = ("meetings", "decisions", "recordings", "dead_letter")
VerdictKind = Literal["recorded", "not_recorded", "failed"]

# Ties between messages appended in the same millisecond: the order the router writes them.
_TOPIC_RANK: dict[str, int] = {topic: rank for rank, topic in enumerate(TOPICS)}
# The fields each JSON topic's records cannot do without (more may come: they are ignored).
_REQUIRED = {
    "meetings": ("type", "meeting_id"),
    "decisions": ("meeting_id", "trigger", "outcome"),
    "recordings": ("recording_id", "meeting_id", "status"),
}
_RECORDED_OUTCOMES = frozenset({"started", "already_recording"})
_LIVE_STATUSES = frozenset({"INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED"})


@dataclass(frozen=True)
class StoryRecord:
    """One message read from one of the four topics, as it came off the broker."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int  # the Kafka timestamp
    headers: Mapping[str, str]
    value: bytes | None
    key: str | None = None


@dataclass(frozen=True)
class Entry:
    """One line of the story."""

    time: str  # RFC 3339 UTC
    kind: str
    summary: str
    record: Mapping[str, object] | None
    topic: str = ""
    partition: int = 0
    offset: int = 0

    def to_json(self) -> dict[str, object]:
        """The `--json` line of this entry."""
        return {
            "time": self.time,
            "kind": self.kind,
            "summary": self.summary,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "record": None if self.record is None else dict(self.record),
        }

    def line(self) -> str:
        """`<time>  <kind>  <summary>`."""
        return f"{self.time}  {self.kind}  {self.summary}"


@dataclass(frozen=True)
class Verdict:
    """What the story adds up to."""

    verdict: VerdictKind
    detail: str
    recording_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The last `--json` line."""
        return {"verdict": self.verdict, "detail": self.detail, "recording_id": self.recording_id}

    def line(self) -> str:
        """The verdict line of SPEC 9.2."""
        if self.verdict == "recorded":
            return f"verdict: recorded ({self.detail})"
        if self.verdict == "failed":
            return f"verdict: recording failed ({self.detail})"
        return f"verdict: not recorded ({self.detail})"


@dataclass(frozen=True)
class Story:
    """A meeting's entries in time order and their verdict (None: nothing is known)."""

    meeting_id: str
    entries: tuple[Entry, ...] = ()
    verdict: Verdict | None = None

    def to_json(self) -> dict[str, object]:
        """`{"meeting_id", "timeline", "verdict"}`, as the console's API answers it."""
        return {
            "meeting_id": self.meeting_id,
            "timeline": [entry.to_json() for entry in self.entries],
            "verdict": None if self.verdict is None else self.verdict.to_json(),
        }

    def lines(self) -> list[str]:
        """The text `router why` prints: one line per entry, then the verdict."""
        lines = [entry.line() for entry in self.entries]
        if self.verdict is not None:
            lines.append(self.verdict.line())
        return lines


def build_story(meeting_id: str, records: Iterable[StoryRecord]) -> Story:
    """The story of `meeting_id` among `records` (which may hold other meetings' too)."""
    mine: list[tuple[StoryRecord, Mapping[str, object] | str]] = []
    for record in records:
        decoded = _decode(record)
        if _belongs(meeting_id, record, decoded):
            mine.append((record, decoded))
    mine.sort(key=lambda pair: _order(pair[0]))
    entries = tuple(_entry(record, decoded) for record, decoded in mine)
    return Story(meeting_id, entries, _verdict(entries))


def _order(record: StoryRecord) -> tuple[int, int, int, int]:
    rank = _TOPIC_RANK.get(record.topic, len(_TOPIC_RANK))
    return (record.timestamp_ms, rank, record.partition, record.offset)


def _decode(record: StoryRecord) -> Mapping[str, object] | str:
    """The record as a mapping, or why it cannot be read."""
    if record.value is None:
        return "no value"
    try:
        value = json.loads(record.value)
    except ValueError:
        return "not JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    if record.topic == "dead_letter":
        return {
            "meeting_id": meeting_key(value),
            "event": record.headers.get("router-event") or value.get("event"),
            "stage": record.headers.get("router-stage"),
            "error": record.headers.get("router-error"),
            "delivery_id": record.headers.get("router-delivery-id")
            or record.headers.get("rtk-uuid"),
        }
    wanting = [name for name in _REQUIRED.get(record.topic, ()) if not _is_text(value.get(name))]
    if wanting:
        return f"no string {', '.join(wanting)}"
    return value


def _belongs(meeting_id: str, record: StoryRecord, decoded: Mapping[str, object] | str) -> bool:
    if record.key == meeting_id:
        return True
    return not isinstance(decoded, str) and decoded.get("meeting_id") == meeting_id


def _entry(record: StoryRecord, decoded: Mapping[str, object] | str) -> Entry:
    moment = rfc3339(dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC))
    if isinstance(decoded, str):
        where = f"{record.topic} partition {record.partition} offset {record.offset}"
        summary = f"unreadable record on {where}: {decoded}"
        return Entry(moment, "malformed", summary, None, *_place(record))
    if record.topic == "decisions":
        kind, summary = "decision", decision_summary(decoded)
    elif record.topic == "recordings":
        kind, summary = "recording", recording_summary(decoded)
    elif record.topic == "dead_letter":
        kind, summary = "dead-letter", dead_letter_summary(decoded)
    else:
        kind, summary = str(decoded["type"]), meeting_summary(decoded)
    return Entry(moment, kind, summary, decoded, *_place(record))


def _place(record: StoryRecord) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset


@dataclass
class _Verdicts:
    """The verdict as the story goes on."""

    current: Verdict | None = None
    rules: dict[str, str] = field(default_factory=dict)  # recording id: the rule that started it

    def see(self, entry: Entry) -> None:
        record = entry.record
        if record is None:
            return
        if entry.kind == "decision":
            self._decision(record)
        elif entry.kind == "recording":
            self._recording(record)
        elif entry.kind == "dead-letter" and (self.current is None or self._not_recorded):
            self.current = Verdict("failed", dead_letter_summary(record))

    @property
    def _not_recorded(self) -> bool:
        return self.current is not None and self.current.verdict == "not_recorded"

    @property
    def _recorded(self) -> bool:
        return self.current is not None and self.current.verdict == "recorded"

    def _decision(self, record: Mapping[str, object]) -> None:
        outcome, rule = text_of(record, "outcome"), text_of(record, "rule")
        recording_id = text_of(record, "recording_id")
        if outcome in _RECORDED_OUTCOMES:
            if recording_id is not None and rule is not None:
                self.rules[recording_id] = rule
            self.current = Verdict("recorded", _recorded(recording_id, rule), recording_id)
        elif outcome == "failed":
            if text_of(record, "action") != "stop_recording":
                self.current = Verdict("failed", text_of(record, "error") or "failed", recording_id)
        elif self.current is None or self._not_recorded:
            why = not_matched(record) if outcome == "no_match" else _other_why(record)
            self.current = Verdict("not_recorded", f"{outcome}: {why}")

    def _recording(self, record: Mapping[str, object]) -> None:
        recording_id, status = text_of(record, "recording_id"), text_of(record, "status")
        if status == "ERRORED":
            self.current = Verdict("failed", f"recording {recording_id} errored", recording_id)
        elif status in _LIVE_STATUSES and not self._recorded:
            rule = self.rules.get(recording_id or "")
            self.current = Verdict("recorded", _recorded(recording_id, rule), recording_id)


def _verdict(entries: tuple[Entry, ...]) -> Verdict | None:
    if not entries:
        return None
    verdicts = _Verdicts()
    for entry in entries:
        verdicts.see(entry)
    if verdicts.current is None:
        return Verdict("not_recorded", "no decision: no rule was written for its events")
    return verdicts.current


def _recorded(recording_id: str | None, rule: str | None) -> str:
    return f"recording {recording_id or 'unknown'}, rule {rule or 'none'}"


def _other_why(record: Mapping[str, object]) -> str:
    rule = text_of(record, "rule") or "none"
    outcome = text_of(record, "outcome")
    if outcome == "skipped":
        return f"rule {rule} skips this event"
    if outcome == "shadow":
        return f"rule {rule} matched; shadow mode calls nothing"
    if outcome == "not_recording":
        return f"rule {rule} found no recording to stop"
    return f"rule {rule} decided {text_of(record, 'action') or 'nothing'}"


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""
