"""What reconciliation found, applied to the meeting in its order like a webhook: a session RTK
no longer has ends, a session it has that the router never saw starts, a different count of
peers is adopted and the join rules are evaluated (trigger `reconcile`), and a recording
status the router missed is published (`source: "poll"`).

The reconciler asked RTK with the meeting's state as it was then; the worker hands these
events over only while that state is still the meeting's, so nothing here races a webhook.
"""

from __future__ import annotations

from handlers.base import Delivery, HandlerFlow, HandlerResult, Ports
from handlers.policy_step import decide_and_act
from handlers.recordings import published
from router.core.meeting_state import MeetingState
from router.core.reconciliation import TRIGGER, RecordingPolled, SessionChecked, session_verdict
from router.core.record_builders import reconciled_record
from router.core.records import Record

JOINED = "meeting.participantJoined"


def handle_session(
    event: SessionChecked, state: MeetingState, delivery: Delivery, ports: Ports
) -> HandlerFlow:
    """End, start or recount the session as RTK reports it, then decide as for a join."""
    if state.session_id != event.checked_session_id or state.is_past_session(state.session_id):
        return HandlerResult(state)  # (the meeting moved on since the check was made)
    verdict = session_verdict(state, event.session)
    at = delivery.received_at
    records: list[Record] = []
    if verdict in ("ended", "new_session"):
        state = state.ended(state.session_id)
        records.append(reconciled_record("meeting.ended", state, received_at=at))
    found = event.session
    if found is None or verdict in ("ended", "in_step", "past_session"):
        return HandlerResult(state, tuple(records))
    if verdict == "new_session":
        state = state.enter_session(found.id).started(found.id)
        records.append(reconciled_record("meeting.started", state, received_at=at))
        if found.live_participants == state.participants_present:
            return HandlerResult(state, tuple(records))
    counted = state
    state = state.adopt_count(found.live_participants)
    records.append(reconciled_record("meeting.reconciled", state, received_at=at))
    decided = yield from decide_and_act(
        trigger=JOINED,
        recorded_as=TRIGGER,
        state=state,
        participant=None,
        event_time=at,
        delivery=delivery,
        ports=ports,
    )
    if decided.dead_letter is not None:
        # The start failed for good: the count stays as it was, so that the next round finds
        # the difference again and tries again.
        return HandlerResult(counted, (*records, *decided.records))
    return HandlerResult(decided.state, (*records, *decided.records))


def handle_polled(
    event: RecordingPolled, state: MeetingState, delivery: Delivery, ports: Ports
) -> HandlerResult:
    """Publish a status of a known recording that its webhook never brought."""
    recording = event.recording
    if recording.id not in state.recordings:
        return HandlerResult(state)  # (never invented from a poll)
    change = state.recording_status(recording.id, recording.status, recording.session_id)
    if not change.verdict.publish:
        return HandlerResult(state)
    return published(recording, change, delivery, source="poll")
