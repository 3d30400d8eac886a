"""The published records: built from the reference's payloads, every contract field present,
times in RFC 3339 UTC, valid against the committed JSON Schemas, and never a secret."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from router.core.events import (
    KnownEvent,
    MeetingEnded,
    MeetingStarted,
    ParticipantJoined,
    ParticipantLeft,
    RecordingInfo,
    RecordingStatusUpdate,
    parse_event,
)
from router.core.meeting_state import MeetingState
from router.core.record_builders import (
    MeetingEvent,
    meeting_record,
    policy_decision,
    recording_changed,
)
from router.core.records import (
    RECORD_TYPES,
    Record,
    RecordingStatusChanged,
    cloudevent_headers,
    cloudevent_id,
)
from tests.plugins import records as rtk

SCHEMAS = Path(__file__).parent.parent / "router" / "schemas"

RECORDING_FIELDS = [
    "type", "version", "app", "recording_id", "meeting_id", "session_id", "status",
    "previous_status", "source", "occurred_at", "received_at", "started_at", "stopped_at",
    "output_file_name", "download_url", "audio_download_url", "download_url_expiry",
    "file_size", "duration_seconds", "delivery_id",
]  # fmt: skip
MEETING_FIELDS = [
    "type", "version", "app", "meeting_id", "session_id", "title", "organization_id", "occurred_at",
    "received_at", "participant", "participants_present", "reason",
]  # fmt: skip
DECISION_FIELDS = [
    "type", "version", "app", "meeting_id", "session_id", "trigger", "delivery_id", "participant",
    "rule", "action", "outcome", "recording_id", "mode", "policy_version", "error", "decided_at",
    "explanation",
]  # fmt: skip


def apply(event: KnownEvent, state: MeetingState) -> MeetingState:
    """What a handler does to the state before building the record."""
    meeting = event.meeting
    state = state.enter_session(
        meeting.session_id, title=meeting.title, organization_id=meeting.organization_id
    )
    session = meeting.session_id
    match event:
        case MeetingStarted():
            return state.started(session)
        case MeetingEnded():
            return state.ended(session)
        case ParticipantJoined():
            person = event.participant
            return state.joined(person.peer_id, person.custom_participant_id, session_id=session)
        case ParticipantLeft():
            return state.left(event.participant.peer_id, session_id=session)
        case _:
            return state


def decoded(record: Record) -> dict[str, Any]:
    data = record.to_bytes()
    assert b": " not in data
    assert b", " not in data
    result = json.loads(data)
    schema = json.loads((SCHEMAS / f"{record.type}.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(result)
    return result  # type: ignore[no-any-return]


def webhook_recording(payload: dict[str, Any], previous: str | None = None) -> dict[str, Any]:
    event = parse_event(payload)
    assert isinstance(event, RecordingStatusUpdate)
    return decoded(
        recording_changed(
            event.recording,
            MeetingState(rtk.MEETING_ID),
            previous_status=previous,
            received_at=rtk.RECEIVED_AT,
            delivery_id="d-1",
        )
    )


def test_recording_record_from_the_cf_example() -> None:
    record = webhook_recording(rtk.recording("UPLOADED"), previous="UPLOADING")
    assert list(record) == RECORDING_FIELDS
    assert record == {
        "type": "recording.status_changed",
        "version": 1,
        "app": None,
        "recording_id": rtk.RECORDING_ID,
        "meeting_id": rtk.MEETING_ID,
        "session_id": rtk.SESSION_ID,
        "status": "UPLOADED",
        "previous_status": "UPLOADING",
        "source": "webhook",
        "occurred_at": "2026-06-03T10:30:00.000Z",
        "received_at": "2026-06-03T10:05:01.250Z",
        "started_at": "2026-06-03T10:00:00.000Z",
        "stopped_at": "2026-06-03T10:30:00.000Z",
        "output_file_name": "weekly-sync.mp4",
        "download_url": "https://example.com/recording.mp4",
        "audio_download_url": "https://example.com/recording.mp3",
        "download_url_expiry": "2026-06-10T10:30:00.000Z",
        "file_size": 2044680,
        "duration_seconds": 1800,
        "delivery_id": "d-1",
    }


def test_recording_record_from_the_dyte_example() -> None:
    record = webhook_recording(rtk.dyte_uploading(), previous="RECORDING")
    assert record["meeting_id"] == rtk.MEETING_ID
    assert record["session_id"] is None
    assert record["file_size"] == 216787
    assert record["started_at"] == "2023-01-25T04:51:35.903Z"
    assert record["occurred_at"] == record["stopped_at"] == "2023-01-25T05:21:40.117Z"
    assert record["download_url"] is None


@pytest.mark.parametrize(
    ("status", "overrides", "field", "expected"),
    [
        pytest.param("UPLOADED", {"fileSize": 216787}, "file_size", 216787, id="size-number"),
        pytest.param("UPLOADED", {"fileSize": "2044680"}, "file_size", 2044680, id="size-string"),
        pytest.param("UPLOADED", {"fileSize": None}, "file_size", None, id="size-null"),
        pytest.param(
            "UPLOADED",
            {"stoppedTime": "2023-01-25 05:21:40.117302+00:00"},
            "stopped_at",
            "2023-01-25T05:21:40.117Z",
            id="space-and-offset",
        ),
        pytest.param(
            "UPLOADED",
            {"downloadUrlExpiry": "2026-06-10T12:30:00+02:00"},
            "download_url_expiry",
            "2026-06-10T10:30:00.000Z",
            id="offset-to-utc",
        ),
        pytest.param("RECORDING", {}, "occurred_at", "2026-06-03T10:00:00.000Z", id="recording"),
        pytest.param("ERRORED", {}, "occurred_at", None, id="errored-no-time"),
        pytest.param("UPLOADED", {"meetingId": None}, "meeting_id", rtk.MEETING_ID, id="meeting"),
        pytest.param("UPLOADED", {"id": None}, "recording_id", rtk.RECORDING_ID, id="recordingId"),
    ],
)
def test_recording_record_quirks(
    status: str, overrides: dict[str, Any], field: str, expected: object
) -> None:
    assert webhook_recording(rtk.recording(status, **overrides))[field] == expected


def test_recording_started_by_the_router() -> None:
    state = MeetingState(rtk.MEETING_ID, session_id=rtk.SESSION_ID)
    api = RecordingInfo.model_validate({"id": "r-api", "status": "INVOKED", "file_size": 0})
    state, verdict, previous = state.recording_started_by_router(api.id, api.status)
    assert verdict.publish
    record = decoded(
        recording_changed(
            api,
            state,
            previous_status=previous,
            received_at=rtk.RECEIVED_AT,
            delivery_id="d-join",
            source="api",
        )
    )
    assert record["source"] == "api"
    assert (record["status"], record["previous_status"]) == ("INVOKED", None)
    assert record["session_id"] == rtk.SESSION_ID
    assert record["occurred_at"] is None


def test_unknown_status_cannot_be_published() -> None:
    recording = RecordingInfo(id="r", status="STOPPING")
    with pytest.raises(ValidationError):
        recording_changed(
            recording,
            MeetingState("m"),
            previous_status=None,
            received_at=rtk.RECEIVED_AT,
            delivery_id=None,
        )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        recording_changed(
            RecordingInfo(id="r", status="RECORDING"),
            MeetingState("m"),
            previous_status=None,
            received_at=dt.datetime(2026, 6, 3, 10),
            delivery_id=None,
        )


def meetings_record(
    payloads: list[dict[str, Any]], state: MeetingState | None = None
) -> dict[str, Any]:
    """Apply every payload, and build the record of the last one."""
    state = state or MeetingState(rtk.MEETING_ID)
    event: MeetingEvent | None = None
    for payload in payloads:
        parsed = parse_event(payload)
        assert isinstance(parsed, MeetingEvent)
        event = parsed
        state = apply(event, state)
    assert event is not None
    return decoded(meeting_record(event, state, received_at=rtk.RECEIVED_AT))


MARY = {"peer_id": rtk.PEER_ID, "custom_participant_id": "user-123", "display_name": "Mary Sue"}


@pytest.mark.parametrize(
    ("payloads", "expected"),
    [
        pytest.param(
            [rtk.started()],
            {"type": "meeting.started", "participants_present": 0, "participant": None,
             "occurred_at": "2026-06-03T10:00:00.000Z"},
            id="started",
        ),
        pytest.param(
            [rtk.joined(), rtk.started()],
            {"type": "meeting.started", "participants_present": 1},
            id="started-after-a-join-keeps-it",
        ),
        pytest.param(
            [rtk.joined()],
            {"type": "participant.joined", "participants_present": 1, "participant": MARY,
             "occurred_at": "2026-06-03T10:05:00.000Z", "reason": None},
            id="joined",
        ),
        pytest.param(
            [rtk.joined(), rtk.joined()],
            {"type": "participant.joined", "participants_present": 1},
            id="joined-twice-counts-once",
        ),
        pytest.param(
            [rtk.joined(), rtk.joined("peer-2", "user-123")],
            {"type": "participant.joined", "participants_present": 2},
            id="second-device",
        ),
        pytest.param(
            [rtk.joined(), rtk.joined("peer-2", "user-9"), rtk.left()],
            {"type": "participant.left", "participants_present": 1, "participant": MARY,
             "occurred_at": "2026-06-03T10:25:00.000Z"},
            id="left",
        ),
        pytest.param(
            [rtk.joined(), rtk.ended("HOST_ENDED_MEETING")],
            {"type": "meeting.ended", "participants_present": 0, "reason": "HOST_ENDED_MEETING",
             "occurred_at": "2026-06-03T10:30:00.000Z"},
            id="ended",
        ),
    ],
)  # fmt: skip
def test_lifecycle_records(payloads: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    record = meetings_record(payloads)
    assert list(record) == MEETING_FIELDS
    assert record == record | expected
    assert (record["meeting_id"], record["session_id"]) == (rtk.MEETING_ID, rtk.SESSION_ID)
    assert (record["title"], record["organization_id"]) == ("Weekly sync", rtk.ORG_ID)
    assert record["received_at"] == "2026-06-03T10:05:01.250Z"


def test_late_end_of_an_earlier_session_still_says_nobody_is_in_it() -> None:
    next_session = rtk.joined("peer-2", "user-9")
    next_session["meeting"]["sessionId"] = rtk.NEXT_SESSION_ID
    record = meetings_record([rtk.joined(), next_session, rtk.ended()])
    assert (record["session_id"], record["participants_present"]) == (rtk.SESSION_ID, 0)


@pytest.mark.parametrize(
    ("factory", "record_type", "url"),
    [
        pytest.param(
            rtk.chat_synced, "meeting.chat_ready", "https://example.com/chat.json", id="chat"
        ),
        pytest.param(
            rtk.transcript,
            "meeting.transcript_ready",
            "https://example.com/transcript.csv",
            id="transcript",
        ),
        pytest.param(
            rtk.summary, "meeting.summary_ready", "https://example.com/summary.txt", id="summary"
        ),
    ],
)
def test_artifact_records(
    factory: Callable[[], dict[str, Any]], record_type: str, url: str
) -> None:
    record = meetings_record([rtk.started(), factory()])
    assert list(record) == [*MEETING_FIELDS, "download_url", "download_url_expiry"]
    assert record["type"] == record_type
    assert record["download_url"] == url
    assert record["download_url_expiry"] == "2026-06-10T10:30:00.000Z"
    # `meeting.summary` sends no title: the state remembers it.
    assert (record["title"], record["session_id"]) == ("Weekly sync", rtk.SESSION_ID)
    assert record["occurred_at"] is None


def test_livestream_record_never_carries_secrets() -> None:
    record = meetings_record([rtk.started(), rtk.livestream()])
    assert list(record) == [*MEETING_FIELDS, "stream_id", "status", "playback_url"]
    assert record["type"] == "livestream.status_changed"
    assert (record["stream_id"], record["status"]) == (
        "d231d346-c422-43a6-a324-c0d65b79c8a7",
        "LIVE",
    )
    assert record["playback_url"] == "https://example.com/live.m3u8"
    assert record["session_id"] == rtk.SESSION_ID
    raw = json.dumps(record)
    for secret in (rtk.STREAM_KEY, rtk.INGEST_SERVER, "streamKey", "stream_key", "ingest"):
        assert secret not in raw


def test_decision_record() -> None:
    record = decoded(
        policy_decision(
            meeting_id=rtk.MEETING_ID,
            session_id=rtk.SESSION_ID,
            trigger="meeting.participantJoined",
            delivery_id="d-1",
            peer_id=rtk.PEER_ID,
            custom_participant_id="user-123",
            display_name="Mary Sue",
            preset="host",
            rule="board-meetings",
            action="start_recording",
            outcome="started",
            recording_id="r-1",
            mode="enforce",
            policy_version="0123456789ab",
            decided_at=rtk.RECEIVED_AT,
        )
    )
    assert list(record) == DECISION_FIELDS
    assert record["participant"] == MARY | {"preset": "host"}
    assert record["decided_at"] == "2026-06-03T10:05:01.250Z"
    assert (record["error"], record["version"]) == (None, 1)


def test_decision_without_participant() -> None:
    record = decoded(
        policy_decision(
            meeting_id="m",
            session_id=None,
            trigger="meeting.started",
            delivery_id=None,
            rule=None,
            action="none",
            outcome="no_match",
            mode="shadow",
            policy_version="0123456789ab",
            decided_at=rtk.RECEIVED_AT,
        )
    )
    assert record["participant"] is None
    assert record["rule"] is None
    assert record["recording_id"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("policy_version", "0123456789AB", id="version-upper"),
        pytest.param("policy_version", "0123", id="version-short"),
        pytest.param("outcome", "maybe", id="outcome"),
        pytest.param("action", "pause_recording", id="action"),
        pytest.param("mode", "dry-run", id="mode"),
    ],
)
def test_decision_values_are_closed(field: str, value: str) -> None:
    values: dict[str, Any] = {
        "meeting_id": "m",
        "session_id": None,
        "trigger": "meeting.started",
        "delivery_id": None,
        "rule": None,
        "action": "none",
        "outcome": "no_match",
        "mode": "enforce",
        "policy_version": "0123456789ab",
        "decided_at": rtk.RECEIVED_AT,
    }
    with pytest.raises(ValidationError):
        policy_decision(**(values | {field: value}))


def test_records_are_closed() -> None:
    fields = webhook_recording(rtk.recording())
    assert (
        RecordingStatusChanged.model_validate(fields).to_bytes()
        == json.dumps(fields, separators=(",", ":")).encode()
    )
    with pytest.raises(ValidationError):
        RecordingStatusChanged.model_validate(fields | {"stream_key": "x"})


def test_cloudevent_headers() -> None:
    event = parse_event(rtk.started())
    assert isinstance(event, MeetingStarted)
    record = meeting_record(event, MeetingState(rtk.MEETING_ID), received_at=rtk.RECEIVED_AT)
    headers = cloudevent_headers(
        record,
        ce_id=cloudevent_id("d-1", record),
        source="rtk-router/realtimekit",
        time=dt.datetime(2026, 6, 3, 12, 5, 1, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"d-1/meeting.started"),
        ("ce_source", b"rtk-router/realtimekit"),
        ("ce_type", b"meeting.started"),
        ("ce_time", b"2026-06-03T10:05:01.250Z"),
        ("content-type", b"application/json"),
    ]


def test_every_record_type_has_a_distinct_class_and_type() -> None:
    assert sorted(RECORD_TYPES) == sorted(
        [
            "recording.status_changed",
            "meeting.started",
            "meeting.ended",
            "meeting.reconciled",
            "participant.joined",
            "participant.left",
            "meeting.chat_ready",
            "meeting.transcript_ready",
            "meeting.summary_ready",
            "livestream.status_changed",
            "policy.decision",
        ]
    )
    assert len(set(RECORD_TYPES.values())) == len(RECORD_TYPES)
