"""The table the decision flow is tested from: policies, meetings, scripted answers, and a
player that checks each request the flow makes against the script."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from router.core.decision_flow import Decision, DecisionInput, decide
from router.core.entities import ParticipantInfo
from router.core.meeting_state import KnownRecording, MeetingState
from router.core.policy import Policy
from router.core.rtk_requests import (
    Answer,
    CallFailed,
    GetActiveRecording,
    RecordingFound,
    Request,
    SeenRecording,
    StartRecording,
)
from tests.plugins.policy import JOINED, LEFT, WEDNESDAY_NOON, policy_of, rule

STATE = MeetingState("m-1", session_id="s-1", title="Weekly sync", peers={"p-1": "u-1"})
ACTIVE = dataclasses.replace(STATE, active_recording=KnownRecording("rec-0", "RECORDING", "s-1"))
DONE_THIS_SESSION = dataclasses.replace(STATE, session_recording_id="rec-0")
ANN = ParticipantInfo.model_validate({"peerId": "p-1", "customParticipantId": "u-1"})

START = policy_of(rule("start", on=JOINED, recording={"max_seconds": 60}))
MULTIPLE = policy_of(rule("many", on=JOINED, recording={"allow_multiple_recordings": True}))
STOP = policy_of(rule("stop", action="stop_recording", on=LEFT))
SKIP = policy_of(rule("quiet", action="skip", on=JOINED))
BOARD = policy_of(rule("board", on=JOINED, when={"meeting.title": {"regex": "^Board"}}))
HOSTS = policy_of(rule("hosts", on=JOINED, when={"participant.preset": {"in": ["host"]}}))
LEAVES_ONLY = policy_of(rule("stop", action="stop_recording", on=LEFT))


def found(recording_id: str | None, status: str = "INVOKED") -> RecordingFound:
    if recording_id is None:
        return RecordingFound(None)
    return RecordingFound(SeenRecording(recording_id, status, "s-1"))


def refused(status: int) -> CallFailed:
    return CallFailed(f"RTK call failed: HTTP {status}: no", status=status, retriable=False)


def exhausted(status: int, retry_after: float | None = None) -> CallFailed:
    message = f"RTK call failed after 5 attempts: HTTP {status}"
    return CallFailed(message, status=status, retriable=True, retry_after=retry_after)


TIMED_OUT = CallFailed(
    "RTK start_recording failed after 5 attempts: timeout",
    status=None,
    retriable=True,
    timed_out=True,
)
CHECK = GetActiveRecording("m-1")
BEGIN = StartRecording("m-1", {"max_seconds": 60})


@dataclass(frozen=True)
class Case:
    policy: Policy
    script: tuple[tuple[Request, Answer], ...]
    outcome: str | None
    recording_id: str | None = None
    state: MeetingState = STATE
    trigger: str = JOINED
    mode: str = "enforce"
    can_call: bool = True
    dead_letter: bool = False
    error: str | None = None
    published: str | None = None
    preset: str | None = None
    active_after: str | None = field(default=None)


def play(case: Case) -> tuple[Decision | None, list[Request]]:
    """Drive the flow from the case's script, checking each request as it is made."""
    flow = decide(
        DecisionInput(
            trigger=case.trigger,
            state=case.state,
            participant=ANN,
            event_time=WEDNESDAY_NOON,
            policy=case.policy,
            mode=case.mode,  # type: ignore[arg-type]
            can_call=case.can_call,
        )
    )
    asked: list[Request] = []
    script = list(case.script)
    try:
        request = next(flow)
        while True:
            asked.append(request)
            assert script, f"unexpected request {request!r}"
            expected, answer = script.pop(0)
            assert request == expected
            request = flow.send(answer)
    except StopIteration as done:
        assert not script, f"requests never made: {script!r}"
        return done.value, asked


def check(case: Case) -> None:
    """Play the case and hold the decision to every expectation of it."""
    decided, _ = play(case)

    if case.outcome is None:
        assert decided is None
        return
    assert decided is not None
    effect = decided.effect
    assert effect.outcome == case.outcome
    assert effect.recording_id == case.recording_id
    assert effect.dead_letter is case.dead_letter
    if case.error is None:
        assert effect.error is None
    else:
        assert effect.error is not None
        assert case.error in effect.error
    assert decided.preset == case.preset
    assert (effect.started.status if effect.started else None) == case.published
    if effect.started is not None:
        assert effect.started.id == case.recording_id
        assert effect.state.session_recording_id == case.recording_id
    active = effect.state.active_recording
    assert (active.id if active else None) == case.active_after
    if case.outcome == "failed":
        assert effect.state == case.state
