"""Deciding by policy and what the decision calls for, as a flow without I/O.

`decide` is a generator: it yields each request it needs answered by RTK (`rtk_requests`) and
is sent the answer, until it returns the `Decision`. The shell drives it against the RTK
client; tests drive it from a table. Nothing here awaits, reads a clock or raises for a failed
call: a failure is an answer like any other, and the decision says what became of it.

The guarantee kept here (with the per-meeting serial worker around it): at most one recording
is started per meeting session. A recording the state knows to be active, or one RTK reports
through `active-recording`, gives `already_recording` without a start; a recording already
started in this session does too. A 4xx on start (but 401/403/429) is re-checked against
`active-recording` before it is called a failure, which also covers two router instances
racing during a rebalance, since RTK allows one active recording per meeting. A start whose
answer was lost (a time-out, or the retry budget spent) is checked the same way: a recording
RTK did start is never called `failed`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Literal

from router.core.entities import ParticipantInfo
from router.core.meeting_state import KnownRecording, MeetingState
from router.core.policy import Evaluation, MeetingFacts, ParticipantFacts, Policy, PolicyInput
from router.core.recording_state import INVOKED
from router.core.rtk_requests import (
    Answer,
    CallFailed,
    GetActiveRecording,
    LookUpPreset,
    PresetFound,
    RecordingFound,
    Request,
    SeenRecording,
    StartRecording,
    StopRecording,
)
from router.core.terms import Outcome

# RTK refusals that re-checking active-recording cannot explain away.
FINAL_STATUSES = (401, 403, 429)

Flow = Generator[Request, Answer, "Decision | None"]
_Step = Generator[Request, Answer, "Effect"]


@dataclass(frozen=True)
class DecisionInput:
    """One event some rule may be written for; `can_call` is False without an API token."""

    trigger: str
    state: MeetingState
    participant: ParticipantInfo | None
    event_time: dt.datetime
    policy: Policy
    mode: Literal["enforce", "shadow"]
    can_call: bool


@dataclass(frozen=True)
class StartedRecording:
    """A recording the router started whose status is to be published (`source: "api"`)."""

    id: str
    status: str
    session_id: str | None
    previous_status: str | None


@dataclass(frozen=True)
class Effect:
    """The meeting after the decision was carried out, and what came of it."""

    state: MeetingState
    outcome: Outcome
    recording_id: str | None = None
    error: str | None = None
    dead_letter: bool = False
    started: StartedRecording | None = None


@dataclass(frozen=True)
class Decision:
    """The policy's evaluation, the preset it was judged with, and the effect."""

    evaluation: Evaluation
    preset: str | None
    effect: Effect


def decide(inp: DecisionInput) -> Flow:
    """The decision for an event, or None when no rule is written for its type."""
    if not inp.policy.applies_to(inp.trigger):
        return None
    state, participant = inp.state, inp.participant
    preset: str | None = None
    lookup_error: str | None = None
    if (
        inp.can_call
        and participant is not None
        and participant.custom_participant_id is not None
        and inp.policy.reads_preset(inp.trigger)
    ):
        answer = yield LookUpPreset(state.meeting_id, participant.custom_participant_id)
        if isinstance(answer, CallFailed):
            lookup_error = f"participants look-up failed: {answer.message}"
        elif isinstance(answer, PresetFound):
            preset = answer.preset
    evaluation = inp.policy.evaluate(
        PolicyInput(
            trigger=inp.trigger,
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
            event_time=inp.event_time,
        )
    )
    if lookup_error is not None:
        effect = Effect(state, "failed", error=lookup_error, dead_letter=True)
    else:
        effect = yield from _carry_out(evaluation, inp)
    return Decision(evaluation, preset, effect)


def _facts(participant: ParticipantInfo | None, preset: str | None) -> ParticipantFacts | None:
    if participant is None:
        return None
    return ParticipantFacts(
        peer_id=participant.peer_id,
        custom_participant_id=participant.custom_participant_id,
        display_name=participant.display_name,
        preset=preset,
    )


def _carry_out(evaluation: Evaluation, inp: DecisionInput) -> _Step:
    state = inp.state
    if evaluation.outcome_hint == "no_match":
        return Effect(state, "no_match")
    if evaluation.outcome_hint == "skipped":
        return Effect(state, "skipped")
    known = state.active_recording.id if state.active_recording else None
    if inp.mode == "shadow" or not inp.can_call:
        return Effect(state, "shadow", recording_id=known or state.session_recording_id)
    if evaluation.action == "start_recording":
        effect = yield from _start(evaluation, state)
    else:
        effect = yield from _stop(state)
    if effect.outcome == "failed":
        # The retry budget is spent (or RTK refused for good): record it, dead-letter the event.
        return replace(effect, state=state, recording_id=known, dead_letter=True)
    return effect


def _failed(state: MeetingState, failure: CallFailed) -> Effect:
    return Effect(state, "failed", error=failure.message)


def _start(evaluation: Evaluation, state: MeetingState) -> _Step:
    if not evaluation.allow_multiple:
        present = yield from _present(state)
        if present is not None:
            return present
    answer = yield StartRecording(state.meeting_id, evaluation.recording)
    if isinstance(answer, CallFailed):
        return (yield from _unanswered(state, answer))
    started = _recording(answer)
    if started is None:
        return Effect(state, "failed", error="RTK start_recording answered no recording")
    return _started(state, started)


def _present(state: MeetingState) -> Generator[Request, Answer, Effect | None]:
    """`already_recording` (or `failed`) when the session has a recording, else None."""
    if state.active_recording is not None:
        return Effect(state, "already_recording", recording_id=state.active_recording.id)
    if state.session_recording_id is not None:
        return Effect(state, "already_recording", recording_id=state.session_recording_id)
    answer = yield GetActiveRecording(state.meeting_id)
    if isinstance(answer, CallFailed):
        return _failed(state, answer)
    active = _recording(answer)
    if active is not None:
        return Effect(_knowing(state, active), "already_recording", recording_id=active.id)
    return None


def _unanswered(state: MeetingState, failure: CallFailed) -> _Step:
    """A start that failed, unless `active-recording` shows a recording after all."""
    if not failure.answer_lost and failure.status in FINAL_STATUSES:
        return _failed(state, failure)
    check = yield GetActiveRecording(state.meeting_id)
    active = None if isinstance(check, CallFailed) else _recording(check)
    if failure.answer_lost:
        # RTK may have started it before the answer was lost: a new active recording is ours.
        return _lost(state, failure, active)
    if isinstance(check, CallFailed):
        return _failed(state, check)
    if active is None:
        return _failed(state, failure)
    return Effect(_knowing(state, active), "already_recording", recording_id=active.id)


def _lost(state: MeetingState, failure: CallFailed, active: SeenRecording | None) -> Effect:
    if active is None:
        return _failed(state, failure)
    # Only a recording that was not there before, and whose start was not last refused with a
    # 429, can be taken for ours; any other is someone's, and still no failure.
    if failure.status == 429 or _is_known(state, active.id):
        return Effect(_knowing(state, active), "already_recording", recording_id=active.id)
    return _started(state, active)


def _started(state: MeetingState, started: SeenRecording) -> Effect:
    session = started.session_id or state.session_id
    change = state.recording_started_by_router(started.id, started.status or INVOKED, session)
    note = None
    if change.verdict.publish:
        status = change.state.recordings[started.id]
        note = StartedRecording(started.id, status, started.session_id, change.previous_status)
    return Effect(change.state, "started", recording_id=started.id, started=note)


def _stop(state: MeetingState) -> _Step:
    target = state.active_recording
    if target is None:
        answer = yield GetActiveRecording(state.meeting_id)
        if isinstance(answer, CallFailed):
            return _failed(state, answer)
        found = _recording(answer)
        if found is None:
            return Effect(state, "not_recording")
        target = KnownRecording(found.id, found.status, found.session_id or state.session_id)
    answer = yield StopRecording(target.id)
    if isinstance(answer, CallFailed):
        refused = yield from _refused_stop(state, answer)
        if refused is not None:
            return refused
        stopped = None
    else:
        stopped = _recording(answer)
    # No longer active as far as decisions go, even before RTK's UPLOADING webhook says so: a
    # second stop decision then asks RTK instead of stopping it twice.
    state = replace(state, active_recording=None)
    if stopped is None:
        return Effect(state, "not_recording")
    return Effect(state, "stopped", recording_id=target.id)


def _refused_stop(
    state: MeetingState, failure: CallFailed
) -> Generator[Request, Answer, Effect | None]:
    """`failed`, unless RTK refused a stop because the recording had stopped (then None)."""
    # A recording that stopped on its own meanwhile is refused with a 4xx: ask RTK.
    if failure.retriable or failure.status in FINAL_STATUSES:
        return _failed(state, failure)
    check = yield GetActiveRecording(state.meeting_id)
    if isinstance(check, CallFailed):
        return _failed(state, check)
    if _recording(check) is not None:
        return _failed(state, failure)
    return None


def _recording(answer: Answer) -> SeenRecording | None:
    return answer.recording if isinstance(answer, RecordingFound) else None


def _is_known(state: MeetingState, recording_id: str) -> bool:
    active = state.active_recording
    return (
        recording_id in state.recordings
        or recording_id == state.session_recording_id
        or (active is not None and active.id == recording_id)
    )


def _knowing(state: MeetingState, recording: SeenRecording) -> MeetingState:
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
