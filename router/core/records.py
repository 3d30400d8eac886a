"""The JSON records the router publishes (SPEC 6.1 to 6.3), one pydantic model per `type`.

These models are the contract consumers read, and the JSON Schemas in `router/schemas/` are
generated from them: every listed field is always present (null when unknown, never omitted),
times are RFC 3339 UTC with milliseconds, and `version` changes only with an incompatible
change. They are strict (`extra="forbid"`), unlike the lenient RTK models they are built from,
so a field that is not in the contract, such as a livestream's `streamKey`, cannot slip in.
Builders live in `router.core.record_builders`; the CloudEvents headers of a record are here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from router.clock import rfc3339
from router.core.recording_state import RecordingStatus
from router.core.terms import Action, Mode, Outcome

Rfc3339 = Annotated[
    AwareDatetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
PolicyVersion = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{12}$")]


class Record(BaseModel):
    """Base of every published record: frozen, closed, serialised with every field."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )

    type: str
    version: Literal[1] = 1
    # The RTK app the record belongs to (SPEC 11); null in the single-app form.
    app: str | None = None

    def to_bytes(self) -> bytes:
        """The compact JSON value of the Kafka message."""
        return self.model_dump_json().encode()


class RecordParticipant(BaseModel):
    """The participant an event is about."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peer_id: str
    custom_participant_id: str | None
    display_name: str | None


class DecisionParticipant(RecordParticipant):
    """The participant a decision was made for, with the preset the policy looked up."""

    preset: str | None


class RecordingStatusChanged(Record):
    """A real change of a recording's status (topic `recordings`)."""

    type: Literal["recording.status_changed"] = "recording.status_changed"
    recording_id: str
    meeting_id: str
    session_id: str | None
    status: RecordingStatus
    previous_status: RecordingStatus | None
    source: Literal["webhook", "api", "poll"]
    occurred_at: Rfc3339 | None
    received_at: Rfc3339
    started_at: Rfc3339 | None
    stopped_at: Rfc3339 | None
    output_file_name: str | None
    download_url: str | None
    audio_download_url: str | None
    download_url_expiry: Rfc3339 | None
    file_size: int | None
    duration_seconds: int | None
    delivery_id: str | None


class MeetingRecord(Record):
    """The envelope every record of the `meetings` topic shares."""

    meeting_id: str
    session_id: str | None
    title: str | None
    organization_id: str | None
    occurred_at: Rfc3339 | None
    received_at: Rfc3339
    participant: RecordParticipant | None
    participants_present: int
    reason: str | None


class MeetingStartedRecord(MeetingRecord):
    """A session of the meeting went live."""

    type: Literal["meeting.started"] = "meeting.started"


class MeetingEndedRecord(MeetingRecord):
    """The session ended; `reason` is RTK's (`HOST_ENDED_MEETING`, `ALL_PARTICIPANTS_LEFT`), or
    `reconciled` when RTK no longer had the session the router believed live."""

    type: Literal["meeting.ended"] = "meeting.ended"


class MeetingReconciledRecord(MeetingRecord):
    """RTK counted a different number of peers in the live session than the router held (a
    join or leave webhook was lost): `participants_present` is RTK's count, now the router's
    too; `participant` is null and `reason` is `reconciled`."""

    type: Literal["meeting.reconciled"] = "meeting.reconciled"


class ParticipantJoinedRecord(MeetingRecord):
    """A peer joined the session."""

    type: Literal["participant.joined"] = "participant.joined"


class ParticipantLeftRecord(MeetingRecord):
    """A peer left the session."""

    type: Literal["participant.left"] = "participant.left"


class _ArtifactRecord(MeetingRecord):
    download_url: str | None
    download_url_expiry: Rfc3339 | None


class ChatReadyRecord(_ArtifactRecord):
    """The chat export of a session can be downloaded."""

    type: Literal["meeting.chat_ready"] = "meeting.chat_ready"


class TranscriptReadyRecord(_ArtifactRecord):
    """The transcript of a session can be downloaded."""

    type: Literal["meeting.transcript_ready"] = "meeting.transcript_ready"


class SummaryReadyRecord(_ArtifactRecord):
    """The AI summary of a session can be downloaded."""

    type: Literal["meeting.summary_ready"] = "meeting.summary_ready"


class LivestreamStatusChangedRecord(MeetingRecord):
    """A livestream changed status (`LIVE`, `OFFLINE`, `IDLE`); its stream key is never here."""

    type: Literal["livestream.status_changed"] = "livestream.status_changed"
    stream_id: str | None
    status: str | None
    playback_url: str | None


class RuleExplanation(BaseModel):
    """How one rule evaluated for a decision fared, with the judgement `router explain` shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    matched: bool
    why: str


class PolicyDecision(Record):
    """One policy evaluation of an event some rule is written for (topic `decisions`)."""

    type: Literal["policy.decision"] = "policy.decision"
    meeting_id: str
    session_id: str | None
    trigger: str
    delivery_id: str | None
    participant: DecisionParticipant | None
    rule: str | None
    action: Action
    outcome: Outcome
    recording_id: str | None
    mode: Mode
    policy_version: PolicyVersion
    error: str | None
    decided_at: Rfc3339
    # The rules evaluated, in policy order, up to and including the deciding one.
    explanation: tuple[RuleExplanation, ...]


# Every published record type, by topic (the config key of the topic).
TOPIC_RECORDS: Mapping[str, tuple[type[Record], ...]] = {
    "recordings": (RecordingStatusChanged,),
    "meetings": (
        MeetingStartedRecord,
        MeetingEndedRecord,
        MeetingReconciledRecord,
        ParticipantJoinedRecord,
        ParticipantLeftRecord,
        ChatReadyRecord,
        TranscriptReadyRecord,
        SummaryReadyRecord,
        LivestreamStatusChangedRecord,
    ),
    "decisions": (PolicyDecision,),
}


def record_type(model: type[Record]) -> str:
    """The `type` value a record class publishes."""
    default = model.model_fields["type"].default
    assert isinstance(default, str)
    return default


RECORD_TYPES: Mapping[str, type[Record]] = {
    record_type(model): model for models in TOPIC_RECORDS.values() for model in models
}


# CloudEvents binary mode: the record stays the whole message value and its attributes travel as
# `ce_` headers, so plain consumers read plain JSON and others route on `ce_type` unparsed.
CE_SPEC_VERSION = "1.0"
CE_CONTENT_TYPE = "application/json"


def cloudevent_headers(
    record: Record, *, ce_id: str, source: str, time: dt.datetime
) -> list[tuple[str, bytes]]:
    """The headers of a record's Kafka message; `ce_type` is the record's `type`."""
    return [
        ("ce_specversion", CE_SPEC_VERSION.encode()),
        ("ce_id", ce_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", record.type.encode()),
        ("ce_time", rfc3339(time).encode()),
        ("content-type", CE_CONTENT_TYPE.encode()),
    ]


def cloudevent_id(delivery_id: str, record: Record) -> str:
    """A `ce_id` that is the same each time one delivery is processed, so that a replayed
    webhook yields the same ids and consumers can drop the repeats.

    One delivery yields at most one record of each type, so the pair is unique.
    """
    return f"{delivery_id}/{record.type}"
