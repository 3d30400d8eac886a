"""The decision flow deciding a start: every guarantee of at most one recording per session,
from a table of the requests it must make and the answers it is given. No broker, no HTTP."""

from __future__ import annotations

import dataclasses

import pytest

from router.core.decision_flow import DecisionInput, decide
from router.core.rtk_requests import StartRecording, StopRecording
from router.decision_driver import without_calls
from tests.decision_table import (
    ACTIVE,
    ANN,
    BEGIN,
    CHECK,
    DONE_THIS_SESSION,
    MULTIPLE,
    START,
    STATE,
    STOP,
    TIMED_OUT,
    Case,
    check,
    exhausted,
    found,
    play,
    refused,
)
from tests.plugins.policy import JOINED, LEFT, WEDNESDAY_NOON

STARTS: dict[str, Case] = {
    "start": Case(
        START,
        ((CHECK, found(None)), (BEGIN, found("rec-1"))),
        "started",
        "rec-1",
        published="INVOKED",
        active_after="rec-1",
    ),
    "known-active-recording-no-call": Case(
        START, (), "already_recording", "rec-0", state=ACTIVE, active_after="rec-0"
    ),
    "already-started-this-session-no-call": Case(
        START, (), "already_recording", "rec-0", state=DONE_THIS_SESSION
    ),
    "replay-after-lost-state-rtk-has-one": Case(
        START,
        ((CHECK, found("rec-7", "RECORDING")),),
        "already_recording",
        "rec-7",
        active_after="rec-7",
    ),
    "active-check-fails": Case(
        START, ((CHECK, exhausted(503)),), "failed", dead_letter=True, error="HTTP 503"
    ),
    "409-race-rechecked": Case(
        START,
        ((CHECK, found(None)), (BEGIN, refused(409)), (CHECK, found("rec-9", "RECORDING"))),
        "already_recording",
        "rec-9",
        active_after="rec-9",
    ),
    "409-and-nothing-active-fails": Case(
        START,
        ((CHECK, found(None)), (BEGIN, refused(409)), (CHECK, found(None))),
        "failed",
        dead_letter=True,
        error="HTTP 409",
    ),
    "409-and-the-recheck-fails": Case(
        START,
        ((CHECK, found(None)), (BEGIN, refused(409)), (CHECK, exhausted(500))),
        "failed",
        dead_letter=True,
        error="HTTP 500",
    ),
    "401-is-final": Case(
        START,
        ((CHECK, found(None)), (BEGIN, refused(401))),
        "failed",
        dead_letter=True,
        error="HTTP 401",
    ),
    "403-is-final": Case(
        START,
        ((CHECK, found(None)), (BEGIN, refused(403))),
        "failed",
        dead_letter=True,
        error="HTTP 403",
    ),
    "timeout-after-rtk-started-is-started": Case(
        START,
        ((CHECK, found(None)), (BEGIN, TIMED_OUT), (CHECK, found("rec-3", "RECORDING"))),
        "started",
        "rec-3",
        published="RECORDING",
        active_after="rec-3",
    ),
    "timeout-and-nothing-started-fails": Case(
        START,
        ((CHECK, found(None)), (BEGIN, TIMED_OUT), (CHECK, found(None))),
        "failed",
        dead_letter=True,
        error="timeout",
    ),
    "timeout-and-the-check-fails-keeps-the-start-error": Case(
        START,
        ((CHECK, found(None)), (BEGIN, TIMED_OUT), (CHECK, exhausted(500))),
        "failed",
        dead_letter=True,
        error="timeout",
    ),
    "5xx-budget-spent-but-rtk-started": Case(
        START,
        ((CHECK, found(None)), (BEGIN, exhausted(502)), (CHECK, found("rec-4"))),
        "started",
        "rec-4",
        published="INVOKED",
        active_after="rec-4",
    ),
    "5xx-budget-spent-fails": Case(
        START,
        ((CHECK, found(None)), (BEGIN, exhausted(500)), (CHECK, found(None))),
        "failed",
        dead_letter=True,
        error="HTTP 500",
    ),
    "429-budget-spent-fails": Case(
        START,
        ((CHECK, found(None)), (BEGIN, exhausted(429, 30.0)), (CHECK, found(None))),
        "failed",
        dead_letter=True,
        error="HTTP 429",
    ),
    "429-budget-spent-but-a-recording-is-active": Case(
        START,
        ((CHECK, found(None)), (BEGIN, exhausted(429, 30.0)), (CHECK, found("rec-6", "RECORDING"))),
        "already_recording",
        "rec-6",
        active_after="rec-6",
    ),
    "allow-multiple-skips-the-check": Case(
        MULTIPLE,
        ((StartRecording("m-1", {"allow_multiple_recordings": True}), found("rec-2")),),
        "started",
        "rec-2",
        state=ACTIVE,
        published="INVOKED",
        active_after="rec-2",
    ),
    "allow-multiple-lost-start-finds-the-old-one": Case(
        MULTIPLE,
        (
            (StartRecording("m-1", {"allow_multiple_recordings": True}), TIMED_OUT),
            (CHECK, found("rec-0", "RECORDING")),
        ),
        "already_recording",
        "rec-0",
        state=ACTIVE,
        active_after="rec-0",
    ),
}


@pytest.mark.parametrize("case", list(STARTS.values()), ids=list(STARTS))
def test_a_start_decision(case: Case) -> None:
    check(case)


def test_joins_after_a_start_make_no_second_start() -> None:
    first, _ = play(
        Case(START, ((CHECK, found(None)), (BEGIN, found("rec-1"))), "started", "rec-1")
    )
    assert first is not None
    state = first.effect.state
    for _ in range(3):  # duplicated, concurrent (serialised per meeting) or replayed joins
        again, asked = play(Case(START, (), "already_recording", "rec-1", state=state))
        assert again is not None
        assert asked == []
        assert again.effect.outcome == "already_recording"
        assert again.effect.recording_id == "rec-1"
        assert again.effect.started is None
        state = again.effect.state


def test_a_stopped_recording_still_blocks_a_second_start_in_the_session() -> None:
    stopped, _ = play(
        Case(
            STOP,
            ((StopRecording("rec-0"), found("rec-0", "STOPPED")),),
            "stopped",
            state=ACTIVE,
            trigger=LEFT,
        )
    )
    assert stopped is not None
    assert stopped.effect.state.active_recording is None
    state = dataclasses.replace(stopped.effect.state, session_recording_id="rec-0")
    again, asked = play(Case(START, (), "already_recording", state=state))
    assert again is not None
    assert asked == []
    assert again.effect.recording_id == "rec-0"


def test_a_flow_that_may_call_nothing_runs_to_its_end() -> None:
    flow = decide(
        DecisionInput(JOINED, STATE, ANN, WEDNESDAY_NOON, START, "enforce", can_call=False)
    )
    decided = without_calls(flow)
    assert decided is not None
    assert decided.effect.outcome == "shadow"
    assert decided.evaluation.rule == "start"


def test_a_flow_that_asks_while_it_may_not_is_a_bug() -> None:
    flow = decide(DecisionInput(JOINED, STATE, ANN, WEDNESDAY_NOON, START, "enforce", True))
    with pytest.raises(RuntimeError, match="GetActiveRecording"):
        without_calls(flow)
