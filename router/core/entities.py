"""The objects RTK events carry (meeting, participant, recording), normalised to snake_case,
and the lenient coercions of their optional scalars.

RTK's examples disagree on types (`fileSize` is `216787` in one and `"2044680"` in another;
timestamps come with a space or a `T`), so an optional field of an unexpected type is read as
absent instead of failing the event. Required fields (ids) are strict: `parse_event` turns their
absence into a dead-letter. `RecordingInfo` also reads the REST API's snake_case names, so one
model serves both the webhook and the recording the router starts itself.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Any, TypeGuard

from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from router.core.timeparse import parse_timestamp


def usable(value: object) -> TypeGuard[str]:
    """True for a non-empty string: the only form of an id worth keeping."""
    return isinstance(value, str) and value != ""


def _text(value: object) -> str | None:
    """A string as given; anything else is absent."""
    return value if isinstance(value, str) else None


def _identifier(value: object) -> str | None:
    """A non-empty string, or an integer id written as a number; anything else is absent.

    An empty string is absent too, so that it never counts as a participant or a session.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if usable(value) else None


def _status(value: object) -> object:
    """Upper-cased and stripped when a string (RTK's statuses are upper case); other values are
    passed on for the strict check to reject."""
    return value.strip().upper() if isinstance(value, str) else value


def _count(value: object) -> int | None:
    """A non-negative whole number from an int, a float or a numeric string; else None.

    A fractional count (a duration of 1800.4 s) is truncated: the fields are whole units.
    """
    if isinstance(value, bool):
        return None
    number: float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        stripped = value.strip()
        if stripped.isascii() and stripped.isdigit():
            return int(stripped)
        try:
            number = float(stripped)
        except ValueError:
            return None
    else:
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    whole = int(number)
    return whole if whole >= 0 else None


RequiredId = Annotated[str, StringConstraints(strict=True, min_length=1)]
Id = Annotated[str | None, BeforeValidator(_identifier)]
Text = Annotated[str | None, BeforeValidator(_text)]
Timestamp = Annotated[dt.datetime | None, BeforeValidator(parse_timestamp)]
Count = Annotated[int | None, BeforeValidator(_count)]
Status = Annotated[str, BeforeValidator(_status), StringConstraints(strict=True, min_length=1)]


class Lenient(BaseModel):
    """Base of the RTK models: frozen, unknown fields dropped, names or aliases accepted."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class MeetingInfo(Lenient):
    """The `meeting` object most events carry (for `meeting.chatSynced`, its flat fields)."""

    id: RequiredId
    session_id: Id = Field(None, validation_alias="sessionId")
    title: Text = None
    organization_id: Id = Field(None, validation_alias=AliasPath("organizedBy", "id"))
    started_at: Timestamp = Field(None, validation_alias="startedAt")
    ended_at: Timestamp = Field(None, validation_alias="endedAt")


class ParticipantInfo(Lenient):
    """The `participant` of a join or leave; `customParticipantId` falls back to the deprecated
    `clientSpecificId`."""

    peer_id: RequiredId = Field(validation_alias="peerId")
    custom_participant_id: Id = None
    display_name: Text = Field(None, validation_alias="userDisplayName")
    joined_at: Timestamp = Field(None, validation_alias="joinedAt")
    left_at: Timestamp = Field(None, validation_alias="leftAt")

    @model_validator(mode="before")
    @classmethod
    def _custom_id(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "custom_participant_id" not in data:
            custom = data.get("customParticipantId")
            if _identifier(custom) is None:
                custom = data.get("clientSpecificId")
            data = {**data, "custom_participant_id": custom}
        return data


class RecordingInfo(Lenient):
    """A recording as the webhook (camelCase) or the REST API (snake_case) describes it."""

    id: RequiredId
    status: Status
    meeting_id: Id = Field(None, validation_alias=AliasChoices("meetingId", "meeting_id"))
    session_id: Id = Field(None, validation_alias=AliasChoices("roomUUID", "session_id"))
    output_file_name: Text = Field(
        None, validation_alias=AliasChoices("outputFileName", "output_file_name")
    )
    download_url: Text = Field(None, validation_alias=AliasChoices("downloadUrl", "download_url"))
    audio_download_url: Text = Field(
        None,
        validation_alias=AliasChoices(
            "audioDownloadUrl", "audio_download_url", "download_audio_url"
        ),
    )
    download_url_expiry: Timestamp = Field(
        None, validation_alias=AliasChoices("downloadUrlExpiry", "download_url_expiry")
    )
    started_at: Timestamp = Field(
        None, validation_alias=AliasChoices("startedTime", "started_time")
    )
    stopped_at: Timestamp = Field(
        None, validation_alias=AliasChoices("stoppedTime", "stopped_time")
    )
    file_size: Count = Field(None, validation_alias=AliasChoices("fileSize", "file_size"))
    duration_seconds: Count = Field(
        None, validation_alias=AliasChoices("recordingDuration", "recording_duration")
    )

    @model_validator(mode="before")
    @classmethod
    def _id_fallback(cls, data: Any) -> Any:
        # `recordingId` duplicates `id`; either one is enough.
        if (
            isinstance(data, Mapping)
            and not usable(data.get("id"))
            and usable(data.get("recordingId"))
        ):
            data = {**data, "id": data["recordingId"]}
        return data


def recording_occurred_at(recording: RecordingInfo) -> dt.datetime | None:
    """When a recording reached its status: stopped for the upload states, started for
    RECORDING; RTK sends no time for the others."""
    if recording.status in ("UPLOADING", "UPLOADED"):
        return recording.stopped_at
    if recording.status == "RECORDING":
        return recording.started_at
    return None
