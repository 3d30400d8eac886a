"""What the decision flow asks of RTK and what it is told back: requests out, answers in.

Requests name the four things a decision may need (a participant's preset, the meeting's active
recording, a start with its parameters, a stop); answers are either the value asked for or a
`CallFailed` that says how the call failed. The values are plain and frozen, so a flow can be
driven by the RTK client, by an in-memory fake or by a table of answers in a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LookUpPreset:
    """The preset of a participant of the meeting (answered with `PresetFound`)."""

    meeting_id: str
    custom_participant_id: str


@dataclass(frozen=True)
class GetActiveRecording:
    """The meeting's active recording, if any (answered with `RecordingFound`)."""

    meeting_id: str


@dataclass(frozen=True)
class StartRecording:
    """Start recording the meeting with these fields of the start API (`RecordingFound`)."""

    meeting_id: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class StopRecording:
    """Stop the recording (`RecordingFound`, with None when RTK does not know it)."""

    recording_id: str


Request = LookUpPreset | GetActiveRecording | StartRecording | StopRecording


@dataclass(frozen=True)
class SeenRecording:
    """A recording as RTK reported it."""

    id: str
    status: str
    session_id: str | None = None


@dataclass(frozen=True)
class PresetFound:
    preset: str | None


@dataclass(frozen=True)
class RecordingFound:
    """The recording asked about; None for no active recording, or an unknown one."""

    recording: SeenRecording | None


@dataclass(frozen=True)
class CallFailed:
    """A call that gave no usable answer, after whatever retries its client makes.

    `status` is RTK's HTTP status, None when no answer arrived at all (`timed_out`: a time-out
    or a broken connection, so the request may well have taken effect). `retriable` says the
    retry budget ran out rather than RTK refusing the request for good.
    """

    message: str
    status: int | None
    retriable: bool
    retry_after: float | None = None
    timed_out: bool = False

    @property
    def answer_lost(self) -> bool:
        """Whether RTK may have carried the request out although it did not say so."""
        return self.timed_out or self.retriable


Answer = PresetFound | RecordingFound | CallFailed
