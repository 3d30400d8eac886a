"""Fixtures for the events, state and records tests: RTK payloads shaped as the reference shows
them (CF examples, and the Dyte variants with space timestamps, numeric sizes and missing ids).

Each builder returns a fresh dict, so a test may change it freely.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

MEETING_ID = "50c8940e-1b97-402a-97d6-2708b7feca41"
SESSION_ID = "05e57591-d89e-45c9-ae44-08dc1eaad0e0"
NEXT_SESSION_ID = "7a1f3c52-0d4e-4bb8-9c1e-3f0b2d5e6a77"
ORG_ID = "c94c437b-592a-4a39-b9e2-47ef1451e43b"
PEER_ID = "e32fb785-ddd0-4b96-b577-879327c0082f"
RECORDING_ID = "97cb480d-5840-4528-ace3-919b5e386c68"
STREAM_KEY = "live_sk_5f2c9a1e7d3b4c6a"
INGEST_SERVER = "rtmps://ingest.example.com:443/live"
RECEIVED_AT = dt.datetime(2026, 6, 3, 10, 5, 1, 250000, tzinfo=dt.UTC)


def meeting(**overrides: Any) -> dict[str, Any]:
    """The common `meeting` object (reference §3.2)."""
    return {
        "id": MEETING_ID,
        "sessionId": SESSION_ID,
        "title": "Weekly sync",
        "roomName": MEETING_ID,
        "status": "LIVE",
        "createdAt": "2026-06-03T10:00:00.000Z",
        "startedAt": "2026-06-03T10:00:00.000Z",
        "organizedBy": {"id": ORG_ID, "name": "Example organization"},
        **overrides,
    }


def started() -> dict[str, Any]:
    return {"event": "meeting.started", "meeting": meeting()}


def ended(reason: str = "ALL_PARTICIPANTS_LEFT") -> dict[str, Any]:
    return {
        "event": "meeting.ended",
        "meeting": meeting(endedAt="2026-06-03T10:30:00.000Z"),
        "reason": reason,
    }


def participant(peer_id: str = PEER_ID, custom: str | None = "user-123") -> dict[str, Any]:
    person: dict[str, Any] = {
        "peerId": peer_id,
        "userDisplayName": "Mary Sue",
        "joinedAt": "2026-06-03T10:05:00.000Z",
    }
    if custom is not None:
        person |= {"customParticipantId": custom, "clientSpecificId": custom}
    return person


def joined(peer_id: str = PEER_ID, custom: str | None = "user-123") -> dict[str, Any]:
    return {
        "event": "meeting.participantJoined",
        "meeting": meeting(),
        "participant": participant(peer_id, custom),
    }


def left(peer_id: str = PEER_ID, custom: str | None = "user-123") -> dict[str, Any]:
    person = participant(peer_id, custom) | {"leftAt": "2026-06-03T10:25:00.000Z"}
    return {
        "event": "meeting.participantLeft",
        "meeting": meeting(endedAt="2026-06-03T10:30:00.000Z"),
        "participant": person,
    }


def recording(status: str = "UPLOADED", **overrides: Any) -> dict[str, Any]:
    """The CF `recording.statusUpdate` example (reference §3.7): `fileSize` as a string."""
    body: dict[str, Any] = {
        "id": RECORDING_ID,
        "recordingId": RECORDING_ID,
        "status": status,
        "downloadUrl": "https://example.com/recording.mp4",
        "audioDownloadUrl": "https://example.com/recording.mp3",
        "downloadUrlExpiry": "2026-06-10T10:30:00.000Z",
        "startedTime": "2026-06-03T10:00:00.000Z",
        "stoppedTime": "2026-06-03T10:30:00.000Z",
        "fileSize": "2044680",
        "outputFileName": "weekly-sync.mp4",
        "meetingId": MEETING_ID,
        "recordingDuration": 1800,
        "organizationId": ORG_ID,
        "roomUUID": SESSION_ID,
    }
    body.update(overrides)
    return {
        "event": "recording.statusUpdate",
        "recording": body,
        "meeting": meeting(endedAt="2026-06-03T10:30:00.000Z"),
    }


def dyte_uploading() -> dict[str, Any]:
    """The Dyte UPLOADING shape: no `meetingId`, no `roomUUID`, a meeting without `sessionId`,
    space-separated timestamps with microseconds and a numeric `fileSize`."""
    return {
        "event": "recording.statusUpdate",
        "recording": {
            "id": RECORDING_ID,
            "recordingId": RECORDING_ID,
            "status": "UPLOADING",
            "startedTime": "2023-01-25 04:51:35.903816Z",
            "stoppedTime": "2023-01-25 05:21:40.117302Z",
            "fileSize": 216787,
            "outputFileName": f"{MEETING_ID}_1674622295903.mp4",
            "organizationId": ORG_ID,
        },
        "meeting": {
            "id": MEETING_ID,
            "title": "Weekly sync",
            "status": "LIVE",
            "createdAt": "2022-12-13T06:57:09.736Z",
            "startedAt": "2023-01-25T04:51:20.000Z",
            "organizedBy": {"id": ORG_ID, "name": "Example organization"},
        },
    }


def livestream() -> dict[str, Any]:
    return {
        "event": "livestreaming.statusUpdate",
        "streamId": "d231d346-c422-43a6-a324-c0d65b79c8a7",
        "status": "LIVE",
        "manualIngest": False,
        "playbackUrl": "https://example.com/live.m3u8",
        "ingestServer": INGEST_SERVER,
        "streamKey": STREAM_KEY,
        "meeting": {
            "id": MEETING_ID,
            "title": "Weekly sync",
            "createdAt": "2026-06-03T10:00:00.000Z",
            "roomName": MEETING_ID,
            "status": "LIVE",
            "organizedBy": {"id": ORG_ID, "name": "Example organization"},
        },
    }


def chat_synced() -> dict[str, Any]:
    """Flat: no `meeting` object (reference §3.9)."""
    return {
        "event": "meeting.chatSynced",
        "sessionId": SESSION_ID,
        "meetingId": MEETING_ID,
        "title": "Weekly sync",
        "chatDownloadUrl": "https://example.com/chat.json",
        "chatDownloadUrlExpiry": "2026-06-10T10:30:00.000Z",
        "createdAt": "2026-06-03T10:00:00.000Z",
        "startedAt": "2026-06-03T10:00:00.000Z",
        "endedAt": "2026-06-03T10:30:00.000Z",
        "organizedBy": {"id": ORG_ID, "name": "Example organization"},
    }


def transcript() -> dict[str, Any]:
    return {
        "event": "meeting.transcript",
        "meeting": meeting(endedAt="2026-06-03T10:30:00.000Z"),
        "transcriptDownloadUrl": "https://example.com/transcript.csv",
        "transcriptDownloadUrlExpiry": "2026-06-10T10:30:00.000Z",
    }


def summary() -> dict[str, Any]:
    """The newer CF example: the meeting holds only `id`, `sessionId` and `organizedBy`."""
    return {
        "event": "meeting.summary",
        "meeting": {
            "id": MEETING_ID,
            "sessionId": SESSION_ID,
            "organizedBy": {"id": ORG_ID, "name": "Example organization"},
        },
        "summaryDownloadUrl": "https://example.com/summary.txt",
        "summaryDownloadUrlExpiry": "2026-06-10T10:30:00.000Z",
    }


@pytest.fixture
def received_at() -> dt.datetime:
    """A fixed receipt time: the core is never handed the wall clock in tests."""
    return RECEIVED_AT
