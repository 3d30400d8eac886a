"""What RTK's REST answers look like, parsed leniently into the client's frozen values.

RTK wraps every answer in `{"success": ..., "data": ...}` (lists add `paging`, errors add
`error.message`). Fields we do not use are ignored and fields we need are checked, so a new or
missing field in RTK's answers changes nothing until it touches what the router relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from router.errors import RtkApiError


@dataclass(frozen=True)
class RtkRecording:
    """A recording as the REST API reports it."""

    id: str
    status: str
    meeting_id: str | None
    session_id: str | None


@dataclass(frozen=True)
class RtkSession:
    """A meeting's active session as RTK reports it (`GET /meetings/{id}/active-session`)."""

    id: str
    live_participants: int
    status: str  # LIVE or ENDED
    started_at: str | None = None

    @property
    def live(self) -> bool:
        return self.status == "LIVE"


@dataclass(frozen=True)
class RtkParticipant:
    """A participant added to a meeting, with the preset that decides its role."""

    custom_participant_id: str
    preset_name: str | None
    name: str | None


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _ErrorDetail(_Lenient):
    message: str | None = None


class _Paging(_Lenient):
    total_count: int | None = None


class Envelope(_Lenient):
    """The envelope of every answer; an unreadable body becomes an empty one."""

    success: bool | None = None
    data: Any = None
    paging: _Paging | None = None
    error: _ErrorDetail | None = None
    errors: list[_ErrorDetail] | None = None  # Cloudflare's usual v4 shape, in case it appears

    @classmethod
    def parse(cls, raw: bytes) -> Envelope:
        try:
            return cls.model_validate(json.loads(raw))
        except (ValueError, ValidationError):
            return cls()

    @property
    def total_count(self) -> int | None:
        return self.paging.total_count if self.paging else None

    @property
    def message(self) -> str:
        """RTK's error message, whitespace collapsed; empty when it sent none."""
        details = [self.error] if self.error else list(self.errors or ())
        text = next((d.message for d in details if d.message), "") or ""
        return " ".join(text.split())


class _MeetingRef(_Lenient):
    id: str | None = None


class _Recording(_Lenient):
    id: str
    status: str
    meeting_id: str | None = None
    session_id: str | None = None
    meeting: _MeetingRef | None = None


class _Participant(_Lenient):
    custom_participant_id: str
    preset_name: str | None = None
    name: str | None = None


def recording_from(call: str, status: int, data: Any, meeting_id: str | None) -> RtkRecording:
    """The recording in `data`; `meeting_id` fills in what RTK's recording objects leave out."""
    try:
        parsed = _Recording.model_validate(data)
    except ValidationError:
        raise RtkApiError(
            f"RTK {call}: HTTP {status} without a recording id and status",
            status=status,
            retriable=False,
        ) from None
    embedded = parsed.meeting.id if parsed.meeting else None
    return RtkRecording(
        id=parsed.id,
        status=parsed.status,
        meeting_id=parsed.meeting_id or embedded or meeting_id,
        session_id=parsed.session_id,
    )


class _Session(_Lenient):
    id: str
    live_participants: int
    status: str
    started_at: str | None = None


def session_from(status: int, data: Any) -> RtkSession:
    """The session in `data`: its id, a whole `live_participants` of 0 or more and a `status` of
    LIVE or ENDED are required, anything else is not the documented shape."""
    try:
        parsed = _Session.model_validate(data, strict=True)
    except ValidationError:
        parsed = None
    if parsed is None or parsed.live_participants < 0 or parsed.status not in ("LIVE", "ENDED"):
        raise RtkApiError(
            f"RTK active_session: HTTP {status} without a session id, live_participants and status",
            status=status,
            retriable=False,
        )
    return RtkSession(parsed.id, parsed.live_participants, parsed.status, parsed.started_at)


def participants_from(rows: list[Any]) -> list[RtkParticipant]:
    """The usable rows of a participants page; one without a custom id matches no joiner."""
    found: list[RtkParticipant] = []
    for row in rows:
        try:
            item = _Participant.model_validate(row)
        except ValidationError:
            continue
        found.append(RtkParticipant(item.custom_participant_id, item.preset_name, item.name))
    return found
