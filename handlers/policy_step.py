"""Deciding by policy and carrying the decision out: the one place that starts or stops
recordings, shared by the participant and meeting handlers.

The guarantee kept here (with the per-meeting serial worker around it): at most one recording
is started per meeting session. A recording the state knows to be active, or one RTK reports
through `active-recording`, gives `already_recording` without a `POST`; a recording already
started in this session does too; a 4xx on start (but 401/403/429) is re-checked against
`active-recording` before it is called a failure, which also covers two router instances
racing during a rebalance, since RTK allows one active recording per meeting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from handlers.base import Delivery, HandlerResult, Ports
from router.core.events import ParticipantInfo, RecordingInfo
from router.core.meeting_state import KnownRecording, MeetingState
from router.core.policy import Evaluation, MeetingFacts, ParticipantFacts, PolicyInput
from router.core.record_builders import policy_decision, recording_changed
from router.core.recording_state import INVOKED
from router.core.records import Outcome, Record
from router.errors import RtkApiError
from router.realtimekit import RtkClient, RtkRecording

# RTK refusals that re-checking active-recording cannot explain away.
_FINAL_STATUSES = (401, 403, 429)


@dataclass(frozen=True)
class _Effect:
    state: MeetingState
    outcome: Outcome
    recording_id: str | None = None
    error: str | None = None
    records: tuple[Record, ...] = ()
    dead_letter: bool = False


async def decide_and_act(
    *,
    trigger: str,
    state: MeetingState,
    participant: ParticipantInfo | None,
    event_time: dt.datetime | None,
    delivery: Delivery,
    ports: Ports,
) -> HandlerResult:
    """One decision record for an event some rule is written for, and the effect it calls for."""
    if not ports.policy.applies_to(trigger):
        return HandlerResult(state)
    preset, lookup_error = await _preset(trigger, state, participant, ports)
    evaluation = ports.policy.evaluate(
        PolicyInput(
            trigger=trigger,
            meeting=MeetingFacts(
                id=state.meeting_id,
                title=state.title,
                session_id=state.session_id,
                organization_id=state.organization_id,
            ),
            participant=_facts(participant, preset),
            participants=state.participants_present,
            distinct_participants=state.distinct_participants,
            recording=state.active_status or "none",
            event_time=event_time or delivery.received_at,
        )
    )
    if lookup_error is not None:
        effect = _Effect(state, "failed", error=lookup_error, dead_letter=True)
    else:
        effect = await _carry_out(evaluation, state, delivery, ports)
    ports.metrics.decisions.labels(outcome=effect.outcome).inc()
    decision = policy_decision(
        meeting_id=state.meeting_id,
        session_id=state.session_id,
        trigger=trigger,
        delivery_id=delivery.delivery_id,
        rule=evaluation.rule,
        action=evaluation.action or "none",
        outcome=effect.outcome,
        mode=ports.mode,
        policy_version=ports.policy.version,
        decided_at=ports.now(),
        peer_id=participant.peer_id if participant else None,
        custom_participant_id=participant.custom_participant_id if participant else None,
        display_name=participant.display_name if participant else None,
        preset=preset,
        recording_id=effect.recording_id,
        error=effect.error,
    )
    return HandlerResult(
        effect.state,
        (*effect.records, decision),
        dead_letter=effect.error if effect.dead_letter else None,
    )


async def _preset(
    trigger: str, state: MeetingState, participant: ParticipantInfo | None, ports: Ports
) -> tuple[str | None, str | None]:
    """The participant's preset when a rule reads it (a REST look-up), and a failure reason."""
    if (
        ports.rtk is None
        or participant is None
        or participant.custom_participant_id is None
        or not ports.policy.reads_preset(trigger)
    ):
        return None, None
    try:
        return await ports.rtk.preset_of(state.meeting_id, participant.custom_participant_id), None
    except RtkApiError as exc:
        return None, f"participants look-up failed: {exc}"


def _facts(participant: ParticipantInfo | None, preset: str | None) -> ParticipantFacts | None:
    if participant is None:
        return None
    return ParticipantFacts(
        peer_id=participant.peer_id,
        custom_participant_id=participant.custom_participant_id,
        display_name=participant.display_name,
        preset=preset,
    )


async def _carry_out(
    evaluation: Evaluation, state: MeetingState, delivery: Delivery, ports: Ports
) -> _Effect:
    if evaluation.outcome_hint == "no_match":
        return _Effect(state, "no_match")
    if evaluation.outcome_hint == "skipped":
        return _Effect(state, "skipped")
    known = state.active_recording.id if state.active_recording else None
    if ports.mode == "shadow" or ports.rtk is None:
        return _Effect(state, "shadow", recording_id=known or state.session_recording_id)
    try:
        if evaluation.action == "start_recording":
            return await _start(evaluation, state, delivery, ports.rtk, ports)
        return await _stop(state, ports.rtk)
    except RtkApiError as exc:
        # The retry budget is spent (or RTK refused for good): record it, dead-letter the event.
        return _Effect(state, "failed", recording_id=known, error=str(exc), dead_letter=True)


async def _start(
    evaluation: Evaluation, state: MeetingState, delivery: Delivery, rtk: RtkClient, ports: Ports
) -> _Effect:
    if not evaluation.allow_multiple:
        if state.active_recording is not None:
            return _Effect(state, "already_recording", recording_id=state.active_recording.id)
        if state.session_recording_id is not None:
            return _Effect(state, "already_recording", recording_id=state.session_recording_id)
        active = await rtk.active_recording(state.meeting_id)
        if active is not None:
            return _Effect(_knowing(state, active), "already_recording", recording_id=active.id)
    try:
        started = await rtk.start_recording(state.meeting_id, evaluation.recording)
    except RtkApiError as exc:
        if exc.retriable or exc.status in _FINAL_STATUSES:
            raise
        active = await rtk.active_recording(state.meeting_id)
        if active is None:
            raise
        return _Effect(_knowing(state, active), "already_recording", recording_id=active.id)
    change = state.recording_started_by_router(
        started.id, started.status or INVOKED, started.session_id or state.session_id
    )
    records: tuple[Record, ...] = ()
    if change.verdict.publish:
        info = RecordingInfo.model_validate(
            {
                "id": started.id,
                "status": change.state.recordings[started.id],
                "meetingId": state.meeting_id,
                "roomUUID": started.session_id,
            }
        )
        records = (
            recording_changed(
                info,
                change.state,
                previous_status=change.previous_status,
                received_at=ports.now(),
                delivery_id=delivery.delivery_id,
                source="api",
            ),
        )
    return _Effect(change.state, "started", recording_id=started.id, records=records)


async def _stop(state: MeetingState, rtk: RtkClient) -> _Effect:
    target = state.active_recording
    if target is None:
        found = await rtk.active_recording(state.meeting_id)
        if found is None:
            return _Effect(state, "not_recording")
        target = KnownRecording(found.id, found.status, found.session_id or state.session_id)
    try:
        stopped = await rtk.stop_recording(target.id)
    except RtkApiError as exc:
        # A recording that stopped on its own meanwhile is refused with a 4xx: ask RTK.
        if exc.retriable or exc.status in _FINAL_STATUSES:
            raise
        if await rtk.active_recording(state.meeting_id) is not None:
            raise
        stopped = None
    # No longer active as far as decisions go, even before RTK's UPLOADING webhook says so: a
    # second stop decision then asks RTK instead of stopping it twice.
    state = replace(state, active_recording=None)
    if stopped is None:
        return _Effect(state, "not_recording")
    return _Effect(state, "stopped", recording_id=target.id)


def _knowing(state: MeetingState, recording: RtkRecording) -> MeetingState:
    """The state once RTK reports an active recording we had not seen.

    Only the active recording is noted: its statuses are published when their webhooks
    arrive, and noting one here would make that webhook look like a duplicate.
    """
    session = recording.session_id or state.session_id
    known = KnownRecording(recording.id, recording.status, session)
    same_session = session == state.session_id and state.session_recording_id is None
    return replace(
        state,
        active_recording=known,
        session_recording_id=recording.id if same_session else state.session_recording_id,
    )
