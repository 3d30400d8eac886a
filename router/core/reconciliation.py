"""What reconciliation found out from RTK, as internal events of a meeting, and the judgement
of whether a finding is news: pure, no I/O, no clock.

The reconciler asks RTK about a meeting the worker believes live (its active session) and about
recordings that have had no update for an interval (the recording). An answer that changes the
router's picture becomes an event of the meeting, `SessionChecked` or `RecordingPolled`, that
the worker processes in the meeting's order like a webhook (see `handlers.reconcile`); an answer
that changes nothing never becomes one, so most checks cost the worker nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from router.core.entities import RecordingInfo
from router.core.meeting_state import MeetingState
from router.core.recording_state import TERMINAL, judge

# The trigger of the decisions reconciliation causes, and the name its events go by.
TRIGGER = "reconcile"


@dataclass(frozen=True)
class LiveSession:
    """A session RTK reports live, with the peers it counts in it."""

    id: str
    live_participants: int


@dataclass(frozen=True)
class SessionChecked:
    """RTK's answer about the live session of a meeting believed live in `checked_session_id`:
    `session` None means RTK has no live session."""

    meeting_id: str
    checked_session_id: str
    session: LiveSession | None

    @property
    def name(self) -> str:
        return TRIGGER


@dataclass(frozen=True)
class RecordingPolled:
    """A recording as RTK reports it now, ahead of the status the router published."""

    meeting_id: str
    recording: RecordingInfo

    @property
    def name(self) -> str:
        return TRIGGER


ReconcileEvent = SessionChecked | RecordingPolled

SessionVerdict = Literal["ended", "new_session", "count", "in_step", "past_session"]


def is_live(state: MeetingState) -> bool:
    """Whether the router believes the meeting has a live session."""
    return state.session_id is not None and not state.is_past_session(state.session_id)


def open_recordings(state: MeetingState) -> list[tuple[str, str]]:
    """The (id, status) of the meeting's recordings in a non-final status."""
    return [(rid, status) for rid, status in state.recordings.items() if status not in TERMINAL]


def session_verdict(state: MeetingState, session: LiveSession | None) -> SessionVerdict:
    """What RTK's answer about the live session means for the meeting as the router holds it."""
    if session is None:
        return "ended"
    if session.id == state.session_id:
        in_step = session.live_participants == state.participants_present
        return "in_step" if in_step else "count"
    if state.is_past_session(session.id):
        # RTK calls live a session the router saw end: its end webhook is the later word.
        return "past_session"
    return "new_session"


def is_news(state: MeetingState, recording: RecordingInfo) -> bool:
    """Whether a polled status of a recording the router knows would be published."""
    known = state.recordings.get(recording.id)
    return known is not None and judge(known, recording.status).publish
