"""The decision flow on everything but a start: no rule, no match, skip, shadow mode, stops
and preset look-ups, from a table of requests and answers. No broker, no HTTP."""

from __future__ import annotations

import pytest

from router.core.rtk_requests import LookUpPreset, PresetFound, StartRecording, StopRecording
from tests.decision_table import (
    ACTIVE,
    BOARD,
    CHECK,
    DONE_THIS_SESSION,
    HOSTS,
    LEAVES_ONLY,
    SKIP,
    START,
    STOP,
    Case,
    check,
    exhausted,
    found,
    refused,
)
from tests.plugins.policy import LEFT

CASES: dict[str, Case] = {
    "no-rule-for-the-event": Case(START, (), None, trigger=LEFT),
    "no-match-calls-nothing": Case(BOARD, (), "no_match"),
    "skip-calls-nothing": Case(SKIP, (), "skipped"),
    "shadow-start-calls-nothing": Case(START, (), "shadow", mode="shadow"),
    "shadow-names-the-known-recording": Case(
        START, (), "shadow", "rec-0", state=ACTIVE, mode="shadow", active_after="rec-0"
    ),
    "shadow-names-the-session-recording": Case(
        START, (), "shadow", "rec-0", state=DONE_THIS_SESSION, mode="shadow"
    ),
    "no-token-is-shadow": Case(START, (), "shadow", can_call=False),
    "shadow-stop-calls-nothing": Case(
        STOP,
        (),
        "shadow",
        "rec-0",
        state=ACTIVE,
        trigger=LEFT,
        mode="shadow",
        active_after="rec-0",
    ),
    "stop-the-known-recording": Case(
        STOP,
        ((StopRecording("rec-0"), found("rec-0", "STOPPED")),),
        "stopped",
        "rec-0",
        state=ACTIVE,
        trigger=LEFT,
    ),
    "stop-asks-rtk-when-none-is-known": Case(
        STOP,
        ((CHECK, found("rec-5", "RECORDING")), (StopRecording("rec-5"), found("rec-5", "STOPPED"))),
        "stopped",
        "rec-5",
        trigger=LEFT,
    ),
    "stop-with-nothing-active": Case(STOP, ((CHECK, found(None)),), "not_recording", trigger=LEFT),
    "stop-of-a-recording-rtk-forgot": Case(
        STOP, ((StopRecording("rec-0"), found(None)),), "not_recording", state=ACTIVE, trigger=LEFT
    ),
    "stop-refused-because-it-had-stopped": Case(
        STOP,
        ((StopRecording("rec-0"), refused(400)), (CHECK, found(None))),
        "not_recording",
        state=ACTIVE,
        trigger=LEFT,
    ),
    "stop-refused-while-still-active-fails": Case(
        STOP,
        ((StopRecording("rec-0"), refused(400)), (CHECK, found("rec-0", "RECORDING"))),
        "failed",
        "rec-0",
        state=ACTIVE,
        trigger=LEFT,
        dead_letter=True,
        error="HTTP 400",
        active_after="rec-0",
    ),
    "stop-5xx-fails-without-recheck": Case(
        STOP,
        ((StopRecording("rec-0"), exhausted(500)),),
        "failed",
        "rec-0",
        state=ACTIVE,
        trigger=LEFT,
        dead_letter=True,
        error="HTTP 500",
        active_after="rec-0",
    ),
    "preset-looked-up-and-matching": Case(
        HOSTS,
        (
            (LookUpPreset("m-1", "u-1"), PresetFound("host")),
            (CHECK, found(None)),
            (StartRecording("m-1", {}), found("rec-1")),
        ),
        "started",
        "rec-1",
        published="INVOKED",
        preset="host",
        active_after="rec-1",
    ),
    "preset-looked-up-not-matching": Case(
        HOSTS, ((LookUpPreset("m-1", "u-1"), PresetFound("guest")),), "no_match", preset="guest"
    ),
    "preset-look-up-fails": Case(
        HOSTS,
        ((LookUpPreset("m-1", "u-1"), exhausted(500)),),
        "failed",
        dead_letter=True,
        error="participants look-up failed: RTK call failed after 5 attempts: HTTP 500",
    ),
    "no-preset-look-up-without-a-token": Case(HOSTS, (), "no_match", can_call=False),
    "no-preset-look-up-when-no-rule-reads-it": Case(
        LEAVES_ONLY, ((CHECK, found(None)),), "not_recording", trigger=LEFT
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_decision(case: Case) -> None:
    check(case)
