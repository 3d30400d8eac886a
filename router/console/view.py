"""What the console shows of a meeting, taken from its story (`router.core.story`): the title
and head count, the verdict, each recording's latest status and download link, and the
timeline with each decision's explanation.

The story's entries say what happened in one line each; the few fields the page shows beside
that line (an explanation, a status, a link) are read from the entry's decoded record here,
leniently: a record that is not what it should be shows its line and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from router.core.story import Story, Verdict

# The kinds of entries whose record is one of the router's own JSON records worth reading.
DECISION = "decision"
RECORDING = "recording"
DEAD_LETTER = "dead-letter"
MALFORMED = "malformed"
NOT_EVENTS = frozenset({DECISION, RECORDING, DEAD_LETTER, MALFORMED})
# What a decision's summary adds when rules did not match; the page lists the explanation.
_NOT_MATCHED = "; not matched: "
UNKNOWN = Verdict("not_recorded", "nothing is known of this meeting")


@dataclass(frozen=True)
class Explained:
    """One rule's judgement on a decision (SPEC 9.1)."""

    rule: str
    matched: bool
    why: str


@dataclass(frozen=True)
class Row:
    """One line of the timeline."""

    time: str  # RFC 3339, as the story gives it
    kind: str
    summary: str
    outcome: str | None = None  # of a decision
    status: str | None = None  # of a recording
    explanation: tuple[Explained, ...] = ()


@dataclass(frozen=True)
class Recording:
    """A recording of the meeting as its latest record has it."""

    recording_id: str
    status: str
    download_url: str | None
    file_name: str | None
    updated: str


@dataclass(frozen=True)
class MeetingView:
    """Everything the console shows of one meeting."""

    meeting_id: str
    title: str | None
    present: int | None
    verdict: str  # recorded | not_recorded | failed
    verdict_detail: str
    recording_id: str | None
    recordings: tuple[Recording, ...]
    rows: tuple[Row, ...]
    last_time: str | None
    truncated: bool = False
    app: str | None = None  # (the apps form: the RTK app the meeting belongs to)


def meeting_view(story: Story, *, truncated: bool = False) -> MeetingView:
    """The view of a meeting's story."""
    title: str | None = None
    present: int | None = None
    app: str | None = None
    recordings: dict[str, Recording] = {}
    rows = []
    for entry in story.entries:
        time = entry.time
        fields: Mapping[str, Any] = entry.record or {}
        explanation = _explanation(fields.get("explanation")) if entry.kind == DECISION else ()
        summary = entry.summary.split(_NOT_MATCHED)[0] if explanation else entry.summary
        app = _text(fields.get("app")) or app
        if entry.kind not in NOT_EVENTS:
            title = _text(fields.get("title")) or title
            count = fields.get("participants_present")
            present = count if isinstance(count, int) else present
        recording_id = fields.get("recording_id")
        if entry.kind == RECORDING and isinstance(recording_id, str):
            recording = _recording(fields, recording_id, time, recordings.get(recording_id))
            recordings[recording.recording_id] = recording
        rows.append(
            Row(
                time=time,
                kind=entry.kind,
                summary=summary,
                outcome=_text(fields.get("outcome")) if entry.kind == DECISION else None,
                status=_text(fields.get("status")) if entry.kind == RECORDING else None,
                explanation=explanation,
            )
        )
    verdict = story.verdict or UNKNOWN
    return MeetingView(
        meeting_id=story.meeting_id,
        title=title,
        present=present,
        verdict=verdict.verdict,
        verdict_detail=verdict.detail,
        recording_id=verdict.recording_id,
        recordings=tuple(recordings.values()),
        rows=tuple(rows),
        last_time=rows[-1].time if rows else None,
        truncated=truncated,
        app=app,
    )


def safe_link(url: str | None) -> str | None:
    """`url` if it is a plain web address (a `javascript:` link is no download)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("https", "http") else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _recording(
    fields: Mapping[str, Any], recording_id: str, time: str, before: Recording | None
) -> Recording:
    url = safe_link(_text(fields.get("download_url")))
    name = _text(fields.get("output_file_name"))
    return Recording(
        recording_id=recording_id,
        status=_text(fields.get("status")) or "UNKNOWN",
        download_url=url or (before.download_url if before else None),
        file_name=name or (before.file_name if before else None),
        updated=time,
    )


def _explanation(value: object) -> tuple[Explained, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Explained(
            rule=str(item.get("rule", "")),
            matched=item.get("matched") is True,
            why=str(item.get("why", "")),
        )
        for item in value
        if isinstance(item, Mapping)
    )
