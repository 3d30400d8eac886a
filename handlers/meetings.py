"""`meeting.started` and `meeting.ended`: the session's lifecycle, and the policy for rules
written `on: meeting.started`."""

from __future__ import annotations

from handlers.base import Delivery, HandlerFlow, HandlerResult, Ports
from handlers.policy_step import decide_and_act
from router.core.events import MeetingEnded, MeetingStarted
from router.core.meeting_state import MeetingState
from router.core.record_builders import meeting_record


def handle_meeting(
    event: MeetingStarted | MeetingEnded,
    state: MeetingState,
    delivery: Delivery,
    ports: Ports,
) -> HandlerFlow:
    """Start or end the session; a start may decide a recording by policy."""
    meeting = event.meeting
    state = state.enter_session(
        meeting.session_id, title=meeting.title, organization_id=meeting.organization_id
    )
    if isinstance(event, MeetingEnded):
        state = state.ended(meeting.session_id)
        return HandlerResult(
            state, (meeting_record(event, state, received_at=delivery.received_at),)
        )
    state = state.started(meeting.session_id)
    lifecycle = meeting_record(event, state, received_at=delivery.received_at)
    decided = yield from decide_and_act(
        trigger=event.name,
        state=state,
        participant=None,
        event_time=meeting.started_at,
        delivery=delivery,
        ports=ports,
    )
    return HandlerResult(
        decided.state, (lifecycle, *decided.records), dead_letter=decided.dead_letter
    )
