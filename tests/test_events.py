"""Parsing RTK payloads into events: the reference's shapes, their quirks, the fields an event
cannot do without, and the lenient timestamp parser."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.delivery import meeting_key
from router.core.events import (
    EVENT_MODELS,
    ChatSynced,
    LivestreamStatusUpdate,
    MeetingEnded,
    MeetingStarted,
    MeetingSummary,
    MeetingTranscript,
    ParticipantJoined,
    ParticipantLeft,
    RecordingInfo,
    RecordingStatusUpdate,
    UnknownEvent,
    occurred_at,
    parse_event,
)
from router.core.timeparse import parse_timestamp
from router.errors import InvalidEvent
from tests.plugins import records as rtk

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "model"),
    [
        pytest.param(rtk.started(), MeetingStarted, id="meeting.started"),
        pytest.param(rtk.ended(), MeetingEnded, id="meeting.ended"),
        pytest.param(rtk.joined(), ParticipantJoined, id="participantJoined"),
        pytest.param(rtk.left(), ParticipantLeft, id="participantLeft"),
        pytest.param(rtk.chat_synced(), ChatSynced, id="chatSynced-flat"),
        pytest.param(rtk.recording(), RecordingStatusUpdate, id="recording.statusUpdate"),
        pytest.param(rtk.livestream(), LivestreamStatusUpdate, id="livestreaming.statusUpdate"),
        pytest.param(rtk.transcript(), MeetingTranscript, id="meeting.transcript"),
        pytest.param(rtk.summary(), MeetingSummary, id="meeting.summary"),
    ],
)
def test_every_reference_payload_parses_with_its_meeting(
    payload: dict[str, Any], model: type
) -> None:
    event = parse_event(payload)
    assert type(event) is model
    assert not isinstance(event, UnknownEvent)
    assert event.name == payload["event"]
    assert event.meeting.id == rtk.MEETING_ID == meeting_key(payload)
    assert event.meeting.organization_id == rtk.ORG_ID


def test_there_are_nine_known_event_types() -> None:
    assert sorted(EVENT_MODELS) == sorted(
        [
            "meeting.started",
            "meeting.ended",
            "meeting.participantJoined",
            "meeting.participantLeft",
            "meeting.chatSynced",
            "recording.statusUpdate",
            "livestreaming.statusUpdate",
            "meeting.transcript",
            "meeting.summary",
        ]
    )


def test_meeting_fields_are_normalised() -> None:
    event = parse_event(rtk.ended("HOST_ENDED_MEETING"))
    assert isinstance(event, MeetingEnded)
    assert event.meeting.session_id == rtk.SESSION_ID
    assert event.meeting.title == "Weekly sync"
    assert event.meeting.started_at == at("2026-06-03T10:00:00")
    assert event.meeting.ended_at == at("2026-06-03T10:30:00")
    assert event.reason == "HOST_ENDED_MEETING"


@pytest.mark.parametrize(
    ("person", "custom"),
    [
        pytest.param({"customParticipantId": "u-1", "clientSpecificId": "old"}, "u-1", id="both"),
        pytest.param({"clientSpecificId": "legacy-7"}, "legacy-7", id="deprecated-alias-only"),
        pytest.param({"customParticipantId": "", "clientSpecificId": "u-2"}, "u-2", id="empty"),
        pytest.param({"customParticipantId": None}, None, id="null"),
        pytest.param({}, None, id="neither"),
        pytest.param({"customParticipantId": 42}, "42", id="numeric"),
    ],
)
def test_custom_participant_id_falls_back_to_client_specific_id(
    person: dict[str, Any], custom: str | None
) -> None:
    payload = rtk.joined(custom=None)
    payload["participant"] |= person
    event = parse_event(payload)
    assert isinstance(event, ParticipantJoined)
    assert event.participant.custom_participant_id == custom
    assert event.participant.peer_id == rtk.PEER_ID
    assert event.participant.display_name == "Mary Sue"


def test_cf_recording_example_is_normalised() -> None:
    event = parse_event(rtk.recording("uploaded"))
    assert isinstance(event, RecordingStatusUpdate)
    assert event.recording == RecordingInfo(
        id=rtk.RECORDING_ID,
        status="UPLOADED",
        meeting_id=rtk.MEETING_ID,
        session_id=rtk.SESSION_ID,
        output_file_name="weekly-sync.mp4",
        download_url="https://example.com/recording.mp4",
        audio_download_url="https://example.com/recording.mp3",
        download_url_expiry=at("2026-06-10T10:30:00"),
        started_at=at("2026-06-03T10:00:00"),
        stopped_at=at("2026-06-03T10:30:00"),
        file_size=2044680,
        duration_seconds=1800,
    )


def test_dyte_uploading_example_fills_ids_from_the_meeting() -> None:
    event = parse_event(rtk.dyte_uploading())
    assert isinstance(event, RecordingStatusUpdate)
    rec = event.recording
    assert rec.meeting_id == rtk.MEETING_ID
    assert rec.session_id is None
    assert rec.file_size == 216787
    assert rec.started_at == dt.datetime(2023, 1, 25, 4, 51, 35, 903816, tzinfo=UTC)
    assert rec.stopped_at == dt.datetime(2023, 1, 25, 5, 21, 40, 117302, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "meeting", "field", "expected"),
    [
        pytest.param(
            {"recordingId": "r-2", "id": None}, None, "id", "r-2", id="id-from-recordingId"
        ),
        pytest.param({"meetingId": None}, None, "meeting_id", rtk.MEETING_ID, id="meetingId-null"),
        pytest.param(
            {"roomUUID": None},
            {"sessionId": "s-9"},
            "session_id",
            "s-9",
            id="roomUUID-from-meeting",
        ),
        pytest.param({"fileSize": 216787}, None, "file_size", 216787, id="fileSize-number"),
        pytest.param({"fileSize": " 2044680 "}, None, "file_size", 2044680, id="fileSize-padded"),
        pytest.param({"fileSize": 2044680.0}, None, "file_size", 2044680, id="fileSize-float"),
        pytest.param({"fileSize": "1.5e3"}, None, "file_size", 1500, id="fileSize-exponent"),
        pytest.param({"fileSize": "big"}, None, "file_size", None, id="fileSize-garbage"),
        pytest.param({"fileSize": True}, None, "file_size", None, id="fileSize-bool"),
        pytest.param({"fileSize": -1}, None, "file_size", None, id="fileSize-negative"),
        pytest.param(
            {"recordingDuration": "1800"}, None, "duration_seconds", 1800, id="duration-string"
        ),
        pytest.param({"downloadUrl": ["a", "b"]}, None, "download_url", None, id="url-list"),
        pytest.param({"stoppedTime": "yesterday"}, None, "stopped_at", None, id="time-garbage"),
        pytest.param({"status": " recording "}, None, "status", "RECORDING", id="status-case"),
    ],
)
def test_recording_quirks(
    overrides: dict[str, Any], meeting: dict[str, Any] | None, field: str, expected: object
) -> None:
    payload = rtk.recording(**overrides)
    if meeting is not None:
        payload["meeting"] |= meeting
    event = parse_event(payload)
    assert isinstance(event, RecordingStatusUpdate)
    assert getattr(event.recording, field) == expected


def test_recording_without_meeting_object_uses_recording_meeting_id() -> None:
    payload = rtk.recording("RECORDING")
    del payload["meeting"]
    event = parse_event(payload)
    assert isinstance(event, RecordingStatusUpdate)
    assert event.meeting.id == rtk.MEETING_ID == meeting_key(payload)
    assert event.meeting.session_id == rtk.SESSION_ID


def test_recording_reads_rest_snake_case() -> None:
    rest = {
        "id": "r-1",
        "status": "INVOKED",
        "session_id": "s-1",
        "invoked_time": "2025-08-24T14:15:22Z",
        "started_time": None,
        "download_audio_url": "http://example1.com",
        "file_size": 0,
    }
    rec = RecordingInfo.model_validate(rest)
    assert (rec.id, rec.status, rec.session_id, rec.file_size) == ("r-1", "INVOKED", "s-1", 0)
    assert rec.audio_download_url == "http://example1.com"


def test_livestream_never_keeps_secrets() -> None:
    event = parse_event(rtk.livestream())
    assert isinstance(event, LivestreamStatusUpdate)
    assert (event.stream_id, event.status) == ("d231d346-c422-43a6-a324-c0d65b79c8a7", "LIVE")
    assert event.playback_url == "https://example.com/live.m3u8"
    dumped = json.dumps(event.model_dump(mode="json")) + repr(event)
    assert rtk.STREAM_KEY not in dumped
    assert rtk.INGEST_SERVER not in dumped
    assert not hasattr(event, "stream_key")


def test_flat_chat_synced() -> None:
    event = parse_event(rtk.chat_synced())
    assert isinstance(event, ChatSynced)
    assert event.meeting.session_id == rtk.SESSION_ID
    assert event.meeting.title == "Weekly sync"
    assert event.download_url == "https://example.com/chat.json"
    assert event.download_url_expiry == at("2026-06-10T10:30:00")


@pytest.mark.parametrize(
    ("factory", "url"),
    [
        pytest.param(rtk.transcript, "https://example.com/transcript.csv", id="transcript"),
        pytest.param(rtk.summary, "https://example.com/summary.txt", id="summary"),
    ],
)
def test_artifact_urls(factory: Callable[[], dict[str, Any]], url: str) -> None:
    event = parse_event(factory())
    assert isinstance(event, MeetingTranscript | MeetingSummary)
    assert event.download_url == url
    assert event.download_url_expiry == at("2026-06-10T10:30:00")


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    target = payload
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return payload


def _with(payload: dict[str, Any], value: object, *path: str) -> dict[str, Any]:
    target = payload
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        pytest.param(_without(rtk.recording(), "recording"), "recording", id="recording-missing"),
        pytest.param(_with(rtk.recording(), "x", "recording"), "recording", id="recording-string"),
        pytest.param(
            _without(_without(rtk.recording(), "recording", "id"), "recording", "recordingId"),
            "recording.id",
            id="recording-id-missing",
        ),
        pytest.param(
            _with(_without(rtk.recording(), "recording", "recordingId"), 7, "recording", "id"),
            "recording.id",
            id="recording-id-number",
        ),
        pytest.param(
            _without(rtk.recording(), "recording", "status"),
            "recording.status",
            id="status-missing",
        ),
        pytest.param(
            _without(_without(rtk.recording(), "recording", "meetingId"), "meeting"),
            "recording.meetingId",
            id="no-meeting-id-anywhere",
        ),
        pytest.param(
            _without(rtk.joined(), "participant", "peerId"),
            "participant.peerId",
            id="peerId-missing",
        ),
        pytest.param(
            _with(rtk.left(), None, "participant", "peerId"), "participant.peerId", id="peerId-null"
        ),
        pytest.param(
            _with(rtk.joined(), "", "participant", "peerId"),
            "participant.peerId",
            id="peerId-empty",
        ),
        pytest.param(
            _without(rtk.joined(), "participant"), "participant", id="participant-missing"
        ),
        pytest.param(_without(rtk.joined(), "meeting"), "meeting", id="joined-no-meeting"),
        pytest.param(_without(rtk.left(), "meeting", "id"), "meeting.id", id="left-no-meeting-id"),
        pytest.param(_with(rtk.started(), ["x"], "meeting"), "meeting", id="meeting-list"),
        pytest.param(_without(rtk.chat_synced(), "meetingId"), "meetingId", id="chat-no-meetingId"),
        pytest.param(_without(rtk.livestream(), "meeting"), "meeting", id="livestream-no-meeting"),
        pytest.param({"event": 5}, "event", id="event-not-string"),
    ],
)
def test_known_events_missing_what_they_need_are_invalid(
    payload: dict[str, Any], names: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert caught.value.stage == "parse"
    assert names in str(caught.value)


def test_invalid_event_messages_never_quote_values() -> None:
    payload = rtk.livestream()
    payload["meeting"]["id"] = [rtk.STREAM_KEY]
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert (
        str(caught.value)
        == "livestreaming.statusUpdate: meeting.id: Input should be a valid string"
    )
    assert rtk.STREAM_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"event": "meeting.recordingStarted", "meeting": {"id": "m"}}, id="unknown"),
        pytest.param({"event": "Meeting.Started"}, id="case-matters"),
        pytest.param({"event": "recording.statusUpdate.v2", "recording": "x"}, id="suffix"),
    ],
)
def test_unknown_event_types_are_not_errors(payload: dict[str, Any]) -> None:
    assert parse_event(payload) == UnknownEvent(payload["event"])


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(rtk.started(), at("2026-06-03T10:00:00"), id="started-startedAt"),
        pytest.param(rtk.ended(), at("2026-06-03T10:30:00"), id="ended-endedAt"),
        pytest.param(rtk.joined(), at("2026-06-03T10:05:00"), id="joined-joinedAt"),
        pytest.param(rtk.left(), at("2026-06-03T10:25:00"), id="left-leftAt"),
        pytest.param(rtk.recording("INVOKED"), None, id="invoked-none"),
        pytest.param(
            rtk.recording("RECORDING"), at("2026-06-03T10:00:00"), id="recording-startedTime"
        ),
        pytest.param(rtk.recording("PAUSED"), None, id="paused-none"),
        pytest.param(
            rtk.recording("UPLOADING"), at("2026-06-03T10:30:00"), id="uploading-stoppedTime"
        ),
        pytest.param(
            rtk.recording("UPLOADED"), at("2026-06-03T10:30:00"), id="uploaded-stoppedTime"
        ),
        pytest.param(rtk.recording("ERRORED"), None, id="errored-none"),
        pytest.param(_without(rtk.joined(), "participant", "joinedAt"), None, id="joined-no-time"),
        pytest.param(rtk.chat_synced(), None, id="chat-none"),
        pytest.param(rtk.livestream(), None, id="livestream-none"),
        pytest.param({"event": "something.new"}, None, id="unknown-none"),
    ],
)
def test_occurred_at(payload: dict[str, Any], expected: dt.datetime | None) -> None:
    assert occurred_at(parse_event(payload)) == expected


# ---- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "2026-06-03T10:00:00.000Z", dt.datetime(2026, 6, 3, 10, tzinfo=UTC), id="cf-iso"
        ),
        pytest.param(
            "2023-01-25 04:51:35.903816Z",
            dt.datetime(2023, 1, 25, 4, 51, 35, 903816, tzinfo=UTC),
            id="dyte-space-micro",
        ),
        pytest.param(
            "2025-08-24T14:15:22Z",
            dt.datetime(2025, 8, 24, 14, 15, 22, tzinfo=UTC),
            id="no-fraction",
        ),
        pytest.param(
            "2025-08-24T14:15:22.5",
            dt.datetime(2025, 8, 24, 14, 15, 22, 500000, tzinfo=UTC),
            id="naive-is-utc",
        ),
        pytest.param(
            "2025-08-24T16:15:22+02:00",
            dt.datetime(2025, 8, 24, 14, 15, 22, tzinfo=UTC),
            id="offset",
        ),
        pytest.param(
            "2025-08-24T09:45:22-0430",
            dt.datetime(2025, 8, 24, 14, 15, 22, tzinfo=UTC),
            id="offset-compact",
        ),
        pytest.param(
            "2025-08-24T15:15:22+01",
            dt.datetime(2025, 8, 24, 14, 15, 22, tzinfo=UTC),
            id="offset-hours",
        ),
        pytest.param(
            "2025-08-24t14:15:22z",
            dt.datetime(2025, 8, 24, 14, 15, 22, tzinfo=UTC),
            id="lower-case",
        ),
        pytest.param(
            "2025-08-24T14:15:22.123456789Z",
            dt.datetime(2025, 8, 24, 14, 15, 22, 123456, tzinfo=UTC),
            id="nanoseconds-truncated",
        ),
        pytest.param("2025-02-30T00:00:00Z", None, id="february-30"),
        pytest.param("2025-08-24T24:00:00Z", None, id="hour-24"),
        pytest.param("2025-08-24T14:15:22+24:00", None, id="offset-a-day"),
        pytest.param("2025-08-24T14:15:22+01:75", None, id="offset-minutes"),
        pytest.param("2025-08-24", None, id="date-only"),
        pytest.param("1693000000", None, id="epoch-string"),
        pytest.param("", None, id="empty"),
        pytest.param("2025-08-24T14:15:22Z trailing", None, id="trailing"),
        pytest.param("٢٠٢٥-08-24T14:15:22Z", None, id="non-ascii-digits"),
        pytest.param(1693000000, None, id="number"),
        pytest.param(None, None, id="none"),
        pytest.param(["2025-08-24T14:15:22Z"], None, id="list"),
    ],
)
def test_parse_timestamp(text: object, expected: dt.datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_parse_timestamp_converts_datetimes_to_utc() -> None:
    berlin = dt.timezone(dt.timedelta(hours=2))
    assert parse_timestamp(dt.datetime(2026, 6, 3, 12, tzinfo=berlin)) == dt.datetime(
        2026, 6, 3, 10, tzinfo=UTC
    )
    assert parse_timestamp(dt.datetime(2026, 6, 3, 12)) == dt.datetime(2026, 6, 3, 12, tzinfo=UTC)


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=_OFFSETS,
    ),
    separator=st.sampled_from(["T", " "]),
    digits=st.integers(min_value=0, max_value=6),
    zone_style=st.sampled_from(["Z", "offset", "compact", "none"]),
)
def test_formatted_timestamps_parse_back(
    moment: dt.datetime, separator: str, digits: int, zone_style: str
) -> None:
    if zone_style in ("Z", "none"):
        moment = moment.astimezone(UTC)
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    offset = moment.strftime("%z")
    text += {"Z": "Z", "none": "", "offset": f"{offset[:3]}:{offset[3:]}", "compact": offset}[
        zone_style
    ]
    parsed = parse_timestamp(text)
    assert parsed is not None
    assert parsed.tzinfo is UTC
    kept = moment.microsecond - moment.microsecond % 10 ** (6 - digits)
    assert parsed == moment.replace(microsecond=kept)


@given(
    st.one_of(
        st.text(max_size=60), st.from_regex(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d.*", fullmatch=True)
    )
)
def test_parse_timestamp_never_raises(text: str) -> None:
    parsed = parse_timestamp(text)
    assert parsed is None or parsed.utcoffset() == dt.timedelta(0)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_FIELDS = st.sampled_from(
    [
        "meeting",
        "participant",
        "recording",
        "id",
        "peerId",
        "status",
        "meetingId",
        "sessionId",
        "fileSize",
        "startedTime",
        "recordingId",
        "streamKey",
        "organizedBy",
        "joinedAt",
        "reason",
    ]
)


@given(
    name=st.sampled_from(sorted(EVENT_MODELS)),
    payload=st.dictionaries(
        _FIELDS, _JSON | st.dictionaries(_FIELDS, _JSON, max_size=6), max_size=6
    ),
)
def test_known_events_parse_or_raise_invalid_event_only(name: str, payload: dict[str, Any]) -> None:
    try:
        event = parse_event({**payload, "event": name})
    except InvalidEvent as exc:
        problem: InvalidEvent | None = exc
    else:
        problem = None
        assert not isinstance(event, UnknownEvent)
        assert event.name == name
        assert event.meeting.id
    assert problem is None or problem.stage == "parse"
