"""What the receiver needs to know of an authentic body before logging it: is it a JSON object
with a string `event`, and which meeting does it belong to (the Kafka key)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from router.errors import PayloadError

# Deeper documents are refused before parsing: RTK payloads nest four levels at most, and
# the standard parser recurses once per level.
MAX_JSON_DEPTH = 64


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when brackets outside strings nest deeper than `limit` (a cheap pre-parse guard)."""
    # Nesting cannot exceed the number of opening brackets. Counting them runs in C, and it
    # settles every ordinary payload without the byte-by-byte walk below.
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def parse_payload(body: bytes) -> tuple[dict[str, Any], str]:
    """The JSON object and its `event` name, or `PayloadError` saying what is wrong."""
    if json_depth_exceeds(body):
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise PayloadError("no string 'event' field")
    return payload, event


def meeting_key(payload: Mapping[str, Any]) -> str | None:
    """The meeting id every message is keyed by: `meeting.id`, else `meetingId`, else
    `recording.meetingId`."""
    meeting = payload.get("meeting")
    if isinstance(meeting, Mapping) and _usable(meeting.get("id")):
        return str(meeting["id"])
    if _usable(payload.get("meetingId")):
        return str(payload["meetingId"])
    recording = payload.get("recording")
    if isinstance(recording, Mapping) and _usable(recording.get("meetingId")):
        return str(recording["meetingId"])
    return None


def _usable(value: object) -> bool:
    return isinstance(value, str) and value != ""


# The RTK event types (reference section 3.1); anything else is forwarded but not interpreted.
RTK_EVENTS = (
    "meeting.started",
    "meeting.ended",
    "meeting.participantJoined",
    "meeting.participantLeft",
    "meeting.chatSynced",
    "recording.statusUpdate",
    "livestreaming.statusUpdate",
    "meeting.transcript",
    "meeting.summary",
)
