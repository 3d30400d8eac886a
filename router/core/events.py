"""Lenient models of the nine RTK webhook events, normalised to snake_case, and `parse_event`.

RTK payloads vary (reference §3.7, §8): `fileSize` is a number or a string, timestamps use a
space or a `T`, `meetingId` and `sessionId` are sometimes missing, Dyte's examples repeat keys.
So every optional field takes what it can and leaves None for the rest, while the few fields an
event cannot be handled without (the meeting id that keys it, a participant's `peerId`, a
recording's id and status) are strict: missing or of the wrong type, they make `parse_event`
raise `InvalidEvent(stage="parse")`, which sends the delivery to dead-letter. Unknown event
types are not errors: they become `UnknownEvent` and stay on the webhooks log.

Secrets are dropped here, by omission: the livestream model has no `streamKey` or
`ingestServer`, and `extra="ignore"` means nothing unmodelled survives parsing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from router.core.entities import (
    Id,
    Lenient,
    MeetingInfo,
    ParticipantInfo,
    RecordingInfo,
    Text,
    Timestamp,
    recording_occurred_at,
    usable,
)
from router.errors import InvalidEvent

__all__ = [
    "EVENT_MODELS",
    "ChatSynced",
    "Event",
    "KnownEvent",
    "LivestreamStatusUpdate",
    "MeetingEnded",
    "MeetingInfo",
    "MeetingStarted",
    "MeetingSummary",
    "MeetingTranscript",
    "ParticipantInfo",
    "ParticipantJoined",
    "ParticipantLeft",
    "RecordingInfo",
    "RecordingStatusUpdate",
    "UnknownEvent",
    "occurred_at",
    "parse_event",
    "recording_occurred_at",
]


class _Event(Lenient):
    NAME: ClassVar[str]
    meeting: MeetingInfo

    @property
    def name(self) -> str:
        """The RTK event type, as in the payload's `event` field."""
        return self.NAME

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        # One validator calling a per-event hook keeps the order of the adjustments explicit.
        if not isinstance(data, Mapping):
            return data
        return cls._prepare(_with_meeting(data))

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data


class MeetingStarted(_Event):
    NAME = "meeting.started"


class MeetingEnded(_Event):
    NAME = "meeting.ended"
    reason: Text = None


class ParticipantJoined(_Event):
    NAME = "meeting.participantJoined"
    participant: ParticipantInfo


class ParticipantLeft(_Event):
    NAME = "meeting.participantLeft"
    participant: ParticipantInfo


class ChatSynced(_Event):
    """Flat: the meeting's fields sit at the top level, `meetingId` rather than `meeting.id`."""

    NAME = "meeting.chatSynced"
    download_url: Text = Field(None, validation_alias="chatDownloadUrl")
    download_url_expiry: Timestamp = Field(None, validation_alias="chatDownloadUrlExpiry")

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if not _meeting_id_of(data):
            raise PydanticCustomError("missing", "meetingId is missing or not a string")
        return data


class RecordingStatusUpdate(_Event):
    """A recording's new status; the `meeting` object is optional here: `recording.meetingId`
    and `roomUUID` stand in for its `id` and `sessionId`, and it for them."""

    NAME = "recording.statusUpdate"
    recording: RecordingInfo

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data.get("recording"), Mapping):
            raise PydanticCustomError("missing", "recording is missing or not an object")
        recording = dict(data["recording"])
        raw_meeting = data.get("meeting")
        meeting = dict(raw_meeting) if isinstance(raw_meeting, Mapping) else {}
        for ours, theirs in (("meetingId", "id"), ("roomUUID", "sessionId")):
            if not usable(recording.get(ours)) and usable(meeting.get(theirs)):
                recording[ours] = meeting[theirs]
            if not usable(meeting.get(theirs)) and usable(recording.get(ours)):
                meeting[theirs] = recording[ours]
        if not usable(meeting.get("id")):
            raise PydanticCustomError(
                "missing", "recording.meetingId (or meeting.id) is missing or not a string"
            )
        return {**data, "recording": recording, "meeting": meeting}


class LivestreamStatusUpdate(_Event):
    """A livestream's status; `streamKey` and `ingestServer` are secrets and are not modelled."""

    NAME = "livestreaming.statusUpdate"
    stream_id: Id = Field(None, validation_alias="streamId")
    status: Text = None
    playback_url: Text = Field(None, validation_alias="playbackUrl")


class MeetingTranscript(_Event):
    NAME = "meeting.transcript"
    download_url: Text = Field(None, validation_alias="transcriptDownloadUrl")
    download_url_expiry: Timestamp = Field(None, validation_alias="transcriptDownloadUrlExpiry")


class MeetingSummary(_Event):
    NAME = "meeting.summary"
    download_url: Text = Field(None, validation_alias="summaryDownloadUrl")
    download_url_expiry: Timestamp = Field(None, validation_alias="summaryDownloadUrlExpiry")


@dataclass(frozen=True)
class UnknownEvent:
    """An event type this router does not know; it stays on the webhooks log only."""

    name: str


KnownEvent = (
    MeetingStarted
    | MeetingEnded
    | ParticipantJoined
    | ParticipantLeft
    | ChatSynced
    | RecordingStatusUpdate
    | LivestreamStatusUpdate
    | MeetingTranscript
    | MeetingSummary
)
Event = KnownEvent | UnknownEvent

EVENT_MODELS: Mapping[str, type[KnownEvent]] = {
    model.NAME: model
    for model in (
        MeetingStarted,
        MeetingEnded,
        ParticipantJoined,
        ParticipantLeft,
        ChatSynced,
        RecordingStatusUpdate,
        LivestreamStatusUpdate,
        MeetingTranscript,
        MeetingSummary,
    )
}


def parse_event(payload: Mapping[str, Any]) -> Event:
    """The event a verified payload describes, or `InvalidEvent` naming the field at fault."""
    name = payload.get("event")
    if not isinstance(name, str) or not name:
        raise InvalidEvent("no string 'event' field", stage="parse")
    model = EVENT_MODELS.get(name)
    if model is None:
        return UnknownEvent(name)
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        raise InvalidEvent(f"{name}: {_describe(exc)}", stage="parse") from None


def occurred_at(event: Event) -> dt.datetime | None:
    """The event's own time, when RTK sends one that fits the event; else None."""
    match event:
        case MeetingStarted():
            return event.meeting.started_at
        case MeetingEnded():
            return event.meeting.ended_at
        case ParticipantJoined():
            return event.participant.joined_at
        case ParticipantLeft():
            return event.participant.left_at
        case RecordingStatusUpdate():
            return recording_occurred_at(event.recording)
        case _:
            return None


# Top-level meeting fields of the flat shape (`meeting.chatSynced`).
_FLAT_MEETING_KEYS = ("sessionId", "title", "organizedBy", "startedAt", "endedAt")


def _with_meeting(data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with a `meeting` object whose `id` is the meeting key, when the payload has
    one only at the top level (`meetingId`): the same precedence as `meeting_key`."""
    raw = data.get("meeting")
    if (isinstance(raw, Mapping) and usable(raw.get("id"))) or not usable(data.get("meetingId")):
        return dict(data)
    meeting = {key: data[key] for key in _FLAT_MEETING_KEYS if key in data}
    if isinstance(raw, Mapping):
        meeting.update(raw)
    meeting["id"] = data["meetingId"]
    return {**data, "meeting": meeting}


def _meeting_id_of(data: Mapping[str, Any]) -> bool:
    meeting = data.get("meeting")
    return isinstance(meeting, Mapping) and usable(meeting.get("id"))


def _describe(exc: ValidationError) -> str:
    # Messages name fields, never values: a value may be a secret (a stream key, a signed URL).
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        ).lstrip(".")
        problems.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(problems)
