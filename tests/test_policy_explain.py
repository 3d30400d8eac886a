"""What `router explain` prints, the example policy against the sample events, and the policy
version."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from router.core.policy import (
    MeetingFacts,
    ParticipantFacts,
    Policy,
    PolicyConfig,
    PolicyInput,
    format_evaluation,
)
from router.yamlsource import load_yaml
from tests.plugins.policy import JOINED, LEFT, make_input, policy_of, rule


def _input(payload: dict[str, Any], participants: int, **participant: Any) -> PolicyInput:
    """The facts of a sample webhook, as the worker would gather them."""
    meeting = payload["meeting"]
    joined = payload.get("participant")
    when = (joined or {}).get("leftAt") or (joined or {}).get("joinedAt") or meeting["startedAt"]
    return PolicyInput(
        trigger=payload["event"],
        meeting=MeetingFacts(
            id=meeting["id"],
            title=meeting.get("title"),
            session_id=meeting.get("sessionId"),
            organization_id=meeting.get("organizedBy", {}).get("id"),
        ),
        participant=None
        if joined is None
        else ParticipantFacts(
            peer_id=joined["peerId"],
            custom_participant_id=joined["customParticipantId"],
            display_name=joined["userDisplayName"],
            preset=participant.get("preset"),
        ),
        participants=participants,
        distinct_participants=participants,
        recording=participant.get("recording", "none"),
        event_time=dt.datetime.fromisoformat(when),
    )


def test_sample_events_are_what_their_names_say(sample_event: Any) -> None:
    for stem, event in [
        ("participant_joined", JOINED),
        ("participant_left", LEFT),
        ("meeting_started", "meeting.started"),
        ("meeting_ended", "meeting.ended"),
    ]:
        payload = sample_event(stem)
        assert payload["event"] == event
        assert payload["meeting"]["id"] == "50c8940e-1b97-402a-97d6-2708b7feca41"


def test_example_policy_records_a_board_meeting(example_policy: Policy, sample_event: Any) -> None:
    inp = _input(sample_event("participant_joined"), 3, preset="host")
    evaluation = example_policy.evaluate(inp)
    assert (evaluation.rule, evaluation.action) == ("board-meetings", "start_recording")
    assert evaluation.recording == {
        "max_seconds": 3600,
        "file_name_prefix": "board-50c8940e-1b97-402a-97d6-2708b7feca41-2026-06-03",
    }
    assert example_policy.reads_preset(JOINED)
    assert not example_policy.reads_preset(LEFT)


@pytest.mark.parametrize(
    ("stem", "participants", "facts", "decision"),
    [
        pytest.param("participant_joined", 1, {"preset": "host"}, (None, "none"), id="alone"),
        pytest.param("participant_joined", 3, {"preset": "guest"}, (None, "none"), id="guest"),
        pytest.param(
            "participant_joined",
            3,
            {"preset": "host", "recording": "RECORDING"},
            (None, "none"),
            id="already-recording",
        ),
        pytest.param(
            "participant_left",
            1,
            {"recording": "RECORDING"},
            ("stop-when-alone", "stop_recording"),
            id="stop",
        ),
        pytest.param("participant_left", 2, {"recording": "RECORDING"}, (None, "none"), id="stay"),
        pytest.param("meeting_started", 0, {}, (None, None), id="no-rule-for-started"),
        pytest.param("meeting_ended", 0, {}, (None, None), id="no-rule-for-ended"),
    ],
)
def test_example_policy_decisions(
    example_policy: Policy,
    sample_event: Any,
    stem: str,
    participants: int,
    facts: dict[str, Any],
    decision: tuple[Any, ...],
) -> None:
    evaluation = example_policy.evaluate(_input(sample_event(stem), participants, **facts))
    assert (evaluation.rule, evaluation.action) == decision


def test_explain_a_match(example_policy: Policy, sample_event: Any) -> None:
    text = format_evaluation(
        example_policy.evaluate(_input(sample_event("participant_joined"), 3, preset="host"))
    )
    assert text.splitlines()[:4] == [
        "event: meeting.participantJoined",
        "decision: start_recording by rule 'board-meetings'",
        'recording options: {"file_name_prefix": '
        '"board-50c8940e-1b97-402a-97d6-2708b7feca41-2026-06-03", "max_seconds": 3600}',
        "rules, in order (the first that matches decides):",
    ]
    assert "  1. never-record-tests: did not match" in text
    assert "      any: 0 of 2 held: no" in text
    assert "  2. board-meetings: matched, decides" in text
    assert "      participant.preset 'host' in ['host', 'board']: yes" in text
    assert "  5. stop-when-alone: not for this event (written for meeting.participantLeft)" in text


@pytest.mark.parametrize(
    ("rules", "inp", "lines"),
    [
        pytest.param(
            [rule("tests", action="skip"), rule("later", recording={"max_seconds": 1})],
            make_input(),
            [
                "event: meeting.participantJoined",
                "decision: none: rule 'tests' matched and skips this event",
                "rules, in order (the first that matches decides):",
                "  1. tests: matched, decides",
                "      no conditions: matches every event",
                "  2. later: matched, but an earlier rule decided",
                "      no conditions: matches every event",
            ],
            id="skipped",
        ),
        pytest.param(
            [rule(when={"session.participants": {"gte": 2}})],
            make_input(),
            [
                "event: meeting.participantJoined",
                "decision: none: no rule matched (no_match)",
                "rules, in order (the first that matches decides):",
                "  1. r: did not match",
                "      session.participants 1 >= 2: no",
            ],
            id="no-match",
        ),
        pytest.param(
            [],
            make_input(LEFT),
            [
                "event: meeting.participantLeft",
                "decision: none: no rule is written for meeting.participantLeft, "
                "so no decision is made",
                "rules: none",
            ],
            id="not-applicable",
        ),
        pytest.param(
            [rule(recording={"allow_multiple_recordings": True})],
            make_input(),
            [
                "event: meeting.participantJoined",
                "decision: start_recording by rule 'r'",
                'recording options: {"allow_multiple_recordings": true}',
                "allow_multiple_recordings: the one-recording-per-session guarantee is lifted",
                "rules, in order (the first that matches decides):",
                "  1. r: matched, decides",
                "      no conditions: matches every event",
            ],
            id="allow-multiple",
        ),
    ],
)
def test_explain(rules: list[dict[str, Any]], inp: PolicyInput, lines: list[str]) -> None:
    assert format_evaluation(policy_of(*rules).evaluate(inp)).splitlines() == lines


def _version(raw: dict[str, Any]) -> str:
    return Policy.from_config(PolicyConfig.model_validate(raw)).version


BASE = {"rules": [rule("a", when={"meeting.title": "x", "session.participants": 2}), rule("b")]}


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param(
            {
                "rules": [
                    rule("a", when={"session.participants": 2, "meeting.title": "x"}),
                    rule("b"),
                ]
            },
            True,
            id="key-order",
        ),
        pytest.param({"mode": "enforce", **BASE}, True, id="default-mode-written"),
        pytest.param(
            {"rules": [{**BASE["rules"][0], "on": JOINED, "recording": {}}, BASE["rules"][1]]},
            True,
            id="defaults-written",
        ),
        pytest.param({"mode": "shadow", **BASE}, False, id="mode"),
        pytest.param({"rules": list(reversed(BASE["rules"]))}, False, id="rule-order"),
        pytest.param({"rules": [BASE["rules"][0], rule("c")]}, False, id="rule-name"),
        pytest.param({"rules": [BASE["rules"][0]]}, False, id="rule-removed"),
    ],
)
def test_version(other: dict[str, Any], same: bool) -> None:
    assert (_version(other) == _version(BASE)) is same


def test_version_ignores_yaml_layout() -> None:
    block = "rules:\n  - name: a\n    when:\n      meeting.title: x\n    action: skip\n"
    flow = "rules: [{action: skip, when: {meeting.title: 'x'}, name: a}]  # a comment\n"
    versions = {_version(load_yaml(text, {}).data) for text in (block, flow)}
    assert len(versions) == 1
    assert (
        versions.pop()
        == Policy.from_config(
            PolicyConfig.model_validate(
                {"rules": [{"name": "a", "when": {"meeting.title": "x"}, "action": "skip"}]}
            )
        ).version
    )
