"""Deciding by policy and carrying the decision out, shared by the participant and meeting
handlers: the decision flow (`router.core.decision_flow`), whose RTK requests are passed up to
whoever runs the handler, and the decision record with what the flow started.

The flow keeps the guarantee of at most one recording per meeting session; this module only
feeds it the event and the meeting, and turns what it returns into records.
"""

from __future__ import annotations

import datetime as dt

from handlers.base import Delivery, HandlerFlow, HandlerResult, Ports
from router.core.decision_flow import DecisionInput, StartedRecording, decide
from router.core.events import ParticipantInfo, RecordingInfo
from router.core.meeting_state import MeetingState
from router.core.policy import explanation
from router.core.record_builders import policy_decision, recording_changed
from router.core.records import Record
from router.core.terms import DeadLetter


def decide_and_act(
    *,
    trigger: str,
    state: MeetingState,
    participant: ParticipantInfo | None,
    event_time: dt.datetime | None,
    delivery: Delivery,
    ports: Ports,
    recorded_as: str | None = None,
) -> HandlerFlow:
    """One decision record for an event some rule is written for, and the effect it calls for.
    Without an RTK client the flow asks for nothing (`can_call` False). `recorded_as`: the
    decision's trigger when the rules of `trigger` are evaluated for another cause
    (reconciliation evaluates the join rules)."""
    flow = decide(
        DecisionInput(
            trigger=trigger,
            state=state,
            participant=participant,
            event_time=event_time or delivery.received_at,
            policy=ports.policy,
            mode=ports.mode,
            can_call=ports.rtk is not None,
        )
    )
    decided = yield from flow
    if decided is None:
        return HandlerResult(state)
    effect = decided.effect
    ports.metrics.inc(ports.metrics.decisions, effect.outcome)
    records: tuple[Record, ...] = ()
    if effect.started is not None:
        records = (_started_record(effect.started, effect.state, delivery, ports),)
    decision = policy_decision(
        meeting_id=state.meeting_id,
        session_id=state.session_id,
        trigger=recorded_as or trigger,
        delivery_id=delivery.delivery_id,
        rule=decided.evaluation.rule,
        action=decided.evaluation.action or "none",
        outcome=effect.outcome,
        mode=ports.mode,
        policy_version=ports.policy.version,
        decided_at=ports.now(),
        peer_id=participant.peer_id if participant else None,
        custom_participant_id=participant.custom_participant_id if participant else None,
        display_name=participant.display_name if participant else None,
        preset=decided.preset,
        recording_id=effect.recording_id,
        error=effect.error,
        explanation=explanation(decided.evaluation),
    )
    return HandlerResult(
        effect.state,
        (*records, decision),
        dead_letter=DeadLetter(effect.error or "failed") if effect.dead_letter else None,
    )


def _started_record(
    started: StartedRecording, state: MeetingState, delivery: Delivery, ports: Ports
) -> Record:
    """The `INVOKED` (or later status) of a recording the router started, as the API said."""
    info = RecordingInfo.model_validate(
        {
            "id": started.id,
            "status": started.status,
            "meetingId": state.meeting_id,
            "roomUUID": started.session_id,
        }
    )
    return recording_changed(
        info,
        state,
        previous_status=started.previous_status,
        received_at=ports.now(),
        delivery_id=delivery.delivery_id,
        source="api",
    )
