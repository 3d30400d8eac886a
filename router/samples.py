"""Realistic RTK webhook payloads and correctly signed delivery headers, for the emulator,
`router send` and tests.

Shapes follow RTK's documented examples: camelCase fields, the common `meeting` object, the
flat `meeting.chatSynced`, and recording fields that appear only once a recording has reached
the status that produces them. Bodies are encoded compactly, as RTK's sender does, because the
signature covers the exact bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from router.clock import rfc3339
from router.core.delivery import RTK_EVENTS
from router.core.signature import RSA_HEADER, rsa_sign

KNOWN_EVENTS: tuple[str, ...] = RTK_EVENTS
SAMPLE_WEBHOOK_ID = "5b0f7a3e-2c4d-4e8a-9f61-3d7c0b9e4a12"
SAMPLE_ORGANIZATION: Mapping[str, str] = {
    "id": "8e2d4c1a-6b7f-4a90-8c35-1f0e9d2b7a64",
    "name": "Example organization",
}
_NAMES = ("Mary Sue", "Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson")
# Statuses in the order a recording reaches them; each later status carries more fields.
_RECORDING_STAGES = ("INVOKED", "RECORDING", "UPLOADING", "UPLOADED")


def sample_payload(
    event: str,
    *,
    now: dt.datetime,
    meeting_id: str | None = None,
    session_id: str | None = None,
    peer_id: str | None = None,
    custom_participant_id: str | None = None,
    display_name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A payload of `event` as RTK would send it at `now`; ids not given are fresh uuid4s.

    `extra` is merged over the result, nested objects key by key, so any field can be set:
    `meeting={"title": "Board"}`, `reason="HOST_ENDED_MEETING"`,
    `recording={"status": "RECORDING"}`.
    A recording's `status` (default `UPLOADED`) also decides which of its fields are present.
    """
    if event not in KNOWN_EVENTS:
        raise ValueError(f"unknown RTK event {event!r}; known: {', '.join(KNOWN_EVENTS)}")
    meeting_id = meeting_id or str(uuid.uuid4())
    session_id = session_id or str(uuid.uuid4())
    custom_id = custom_participant_id or f"user-{uuid.uuid4().hex[:8]}"
    participant = {
        "peerId": peer_id or str(uuid.uuid4()),
        "userDisplayName": display_name or _NAMES[sum(map(ord, custom_id)) % len(_NAMES)],
        "customParticipantId": custom_id,
        "clientSpecificId": custom_id,
    }
    meeting = _meeting(meeting_id, session_id, now)
    payload: dict[str, Any] = {"event": event, "meeting": meeting}
    if event == "meeting.started":
        meeting["startedAt"] = rfc3339(now)
    elif event == "meeting.ended":
        meeting["endedAt"] = rfc3339(now)
        payload["reason"] = "ALL_PARTICIPANTS_LEFT"
    elif event == "meeting.participantJoined":
        payload["participant"] = {**participant, "joinedAt": rfc3339(now)}
    elif event == "meeting.participantLeft":
        joined = now - dt.timedelta(minutes=20)
        payload["participant"] = {
            **participant,
            "joinedAt": rfc3339(joined),
            "leftAt": rfc3339(now),
        }
    elif event == "recording.statusUpdate":
        overrides = extra.get("recording")
        wanted = overrides if isinstance(overrides, Mapping) else {}
        payload["recording"] = _recording(wanted, meeting_id, session_id, now)
        if payload["recording"]["status"] == "UPLOADED":
            meeting["endedAt"] = rfc3339(now)
    elif event == "livestreaming.statusUpdate":
        payload = _livestream(meeting)
    elif event == "meeting.chatSynced":
        payload = _chat(meeting, now)
    elif event == "meeting.transcript":
        meeting["endedAt"] = rfc3339(now)
        payload["transcriptDownloadUrl"] = (
            f"https://storage.example.com/{session_id}/transcript.csv"
        )
        payload["transcriptDownloadUrlExpiry"] = rfc3339(now + dt.timedelta(days=7))
    else:  # meeting.summary: the newer example trims the meeting object to three fields
        payload["meeting"] = {k: meeting[k] for k in ("id", "sessionId", "organizedBy")}
        payload["summaryDownloadUrl"] = f"https://storage.example.com/{session_id}/summary.txt"
        payload["summaryDownloadUrlExpiry"] = rfc3339(now + dt.timedelta(days=7))
    return _merge(payload, extra)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The body bytes RTK would send: compact JSON, UTF-8, keys in insertion order."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def webhook_headers(
    private_key: rsa.RSAPrivateKey,
    body: bytes,
    *,
    delivery_id: str | None = None,
    webhook_id: str = SAMPLE_WEBHOOK_ID,
) -> dict[str, str]:
    """The headers of one signed delivery of `body`."""
    return {
        RSA_HEADER: rsa_sign(private_key, body),
        "rtk-uuid": delivery_id or str(uuid.uuid4()),
        "rtk-webhook-id": webhook_id,
        "content-type": "application/json",
    }


def _meeting(meeting_id: str, session_id: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": meeting_id,
        "sessionId": session_id,
        "title": "Weekly sync",
        "roomName": meeting_id,
        "status": "LIVE",
        "createdAt": rfc3339(now - dt.timedelta(days=1)),
        "startedAt": rfc3339(now - dt.timedelta(minutes=30)),
        "organizedBy": dict(SAMPLE_ORGANIZATION),
    }


def _recording(
    wanted: Mapping[str, Any], meeting_id: str, session_id: str, now: dt.datetime
) -> dict[str, Any]:
    recording_id = str(wanted.get("id") or uuid.uuid4())
    status = str(wanted.get("status") or "UPLOADED")
    # PAUSED and ERRORED carry what a recording that got as far as RECORDING carries.
    stage = _RECORDING_STAGES.index(status) if status in _RECORDING_STAGES else 1
    started = now - dt.timedelta(minutes=30)
    fields: dict[str, Any] = {
        "id": recording_id,
        "recordingId": recording_id,
        "status": status,
        "meetingId": meeting_id,
        "organizationId": SAMPLE_ORGANIZATION["id"],
        "roomUUID": session_id,
    }
    if stage >= 1:
        fields["outputFileName"] = f"{meeting_id}_{int(started.timestamp() * 1000)}.mp4"
        fields["startedTime"] = rfc3339(started)
    if stage >= 2:
        fields["stoppedTime"] = rfc3339(now)
        fields["fileSize"] = "2044680"
    if stage >= 3:
        fields["downloadUrl"] = f"https://storage.example.com/{recording_id}/recording.mp4"
        fields["audioDownloadUrl"] = f"https://storage.example.com/{recording_id}/recording.mp3"
        fields["downloadUrlExpiry"] = rfc3339(now + dt.timedelta(days=7))
        fields["recordingDuration"] = 1800
    return fields


def _livestream(meeting: Mapping[str, Any]) -> dict[str, Any]:
    stream_id = str(uuid.uuid4())
    keep = ("id", "title", "createdAt", "roomName", "status", "organizedBy")
    return {
        "event": "livestreaming.statusUpdate",
        "streamId": stream_id,
        "status": "LIVE",
        "manualIngest": False,
        "playbackUrl": f"https://stream.example.com/{stream_id}/live.m3u8",
        "ingestServer": "rtmps://live.example.com:443/live",
        "streamKey": uuid.uuid4().hex,
        "meeting": {k: meeting[k] for k in keep},
    }


def _chat(meeting: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {
        "event": "meeting.chatSynced",
        "sessionId": meeting["sessionId"],
        "meetingId": meeting["id"],
        "title": meeting["title"],
        "chatDownloadUrl": f"https://storage.example.com/{meeting['sessionId']}/chat.json",
        "chatDownloadUrlExpiry": rfc3339(now + dt.timedelta(days=7)),
        "createdAt": meeting["createdAt"],
        "startedAt": meeting["startedAt"],
        "endedAt": rfc3339(now),
        "organizedBy": meeting["organizedBy"],
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged
