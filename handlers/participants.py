"""`meeting.participantJoined` and `meeting.participantLeft`: keep the set of peers present,
publish the lifecycle record, and decide by policy with the session as it is after the event."""

from __future__ import annotations

from handlers.base import Delivery, HandlerFlow, HandlerResult, Ports
from handlers.policy_step import decide_and_act
from router.core.events import ParticipantJoined, ParticipantLeft
from router.core.meeting_state import MeetingState
from router.core.record_builders import meeting_record


def handle_participant(
    event: ParticipantJoined | ParticipantLeft,
    state: MeetingState,
    delivery: Delivery,
    ports: Ports,
) -> HandlerFlow:
    """Apply the join or leave, then let the policy decide."""
    meeting = event.meeting
    session_id = meeting.session_id
    state = state.enter_session(
        session_id, title=meeting.title, organization_id=meeting.organization_id
    )
    person = event.participant
    if isinstance(event, ParticipantJoined):
        state = state.joined(person.peer_id, person.custom_participant_id, session_id=session_id)
        event_time = person.joined_at
    else:
        state = state.left(person.peer_id, session_id=session_id)
        event_time = person.left_at
    lifecycle = meeting_record(event, state, received_at=delivery.received_at)
    if state.is_past_session(session_id) and session_id != state.session_id:
        # A late event of a session that is over: recorded, but no policy acts on it.
        return HandlerResult(state, (lifecycle,))
    decided = yield from decide_and_act(
        trigger=event.name,
        state=state,
        participant=person,
        event_time=event_time or person.joined_at,
        delivery=delivery,
        ports=ports,
    )
    return HandlerResult(
        decided.state, (lifecycle, *decided.records), dead_letter=decided.dead_letter
    )
