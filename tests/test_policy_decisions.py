"""Decisions: first match wins, `skip`, `no_match`, triggers no rule is written for,
`applies_to`, `reads_preset`, recording templates and `allow_multiple_recordings`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.plugins.policy import JOINED, LEFT, STARTED, cases, make_input, policy_of, rule


def test_first_match_wins_and_every_rule_is_traced() -> None:
    policy = policy_of(
        rule("small", when={"session.participants": {"lt": 2}}, recording={"max_seconds": 1}),
        rule("any", recording={"max_seconds": 2}),
        rule("leave", on=LEFT, action="stop_recording"),
    )
    evaluation = policy.evaluate(make_input(participants=1))
    assert (evaluation.rule, evaluation.action, evaluation.outcome_hint) == (
        "small",
        "start_recording",
        "match",
    )
    assert evaluation.recording == {"max_seconds": 1}
    assert [(t.rule, t.applies, t.matched) for t in evaluation.trace] == [
        ("small", True, True),
        ("any", True, True),
        ("leave", False, False),
    ]
    assert evaluation.trace[2].reasons == ("written for meeting.participantLeft",)
    assert policy.evaluate(make_input(participants=3)).rule == "any"


def test_skip_stops_evaluation_with_action_none() -> None:
    policy = policy_of(
        rule("tests", action="skip", when={"meeting.title": {"regex": "test"}}), rule()
    )
    evaluation = policy.evaluate(make_input(title="a test call"))
    assert (evaluation.rule, evaluation.action, evaluation.outcome_hint) == (
        "tests",
        "none",
        "skipped",
    )
    assert (evaluation.recording, evaluation.allow_multiple) == ({}, False)
    assert policy.evaluate(make_input()).rule == "r"


def test_no_match() -> None:
    policy = policy_of(rule(when={"session.participants": {"gte": 2}}))
    evaluation = policy.evaluate(make_input())
    assert (evaluation.rule, evaluation.action, evaluation.outcome_hint) == (
        None,
        "none",
        "no_match",
    )
    assert evaluation.recording == {}
    assert evaluation.trace[0].reasons == ("session.participants 1 >= 2: no",)


def test_no_rule_for_the_trigger() -> None:
    policy = policy_of(rule(on=JOINED))
    evaluation = policy.evaluate(make_input(LEFT))
    assert (evaluation.rule, evaluation.action, evaluation.outcome_hint) == (
        None,
        None,
        "not_applicable",
    )
    assert evaluation.trigger == LEFT
    assert policy_of().evaluate(make_input()).action is None


def test_stop_rule_on_leave() -> None:
    policy = policy_of(
        rule("stop", on=LEFT, action="stop_recording", when={"session.participants": 0}),
    )
    evaluation = policy.evaluate(make_input(LEFT, participants=0, recording="RECORDING"))
    assert (evaluation.rule, evaluation.action, evaluation.recording) == (
        "stop",
        "stop_recording",
        {},
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    cases(
        [
            ("none", [], {JOINED: False, LEFT: False, STARTED: False}),
            ("default-joined", [rule()], {JOINED: True, LEFT: False, STARTED: False}),
            (
                "left-started",
                [rule(on=LEFT), rule("s", on=STARTED)],
                {JOINED: False, LEFT: True, STARTED: True},
            ),
            (
                "even-never-matching",
                [rule(on=LEFT, when={"meeting.id": {"in": []}})],
                {JOINED: False, LEFT: True, STARTED: False},
            ),
        ]
    ),
)
def test_applies_to(rules: list[dict[str, Any]], expected: dict[str, bool]) -> None:
    policy = policy_of(*rules)
    assert {trigger: policy.applies_to(trigger) for trigger in expected} == expected
    assert not policy.applies_to("meeting.ended")


@pytest.mark.parametrize(
    ("when", "on", "expected"),
    cases(
        [
            ("no-when", None, JOINED, False),
            ("direct", {"participant.preset": "host"}, JOINED, True),
            ("exists", {"participant.preset": {"exists": True}}, JOINED, True),
            ("other-field", {"participant.display_name": "host"}, JOINED, False),
            (
                "in-any",
                {"any": [{"meeting.id": "x"}, {"participant.preset": "host"}]},
                JOINED,
                True,
            ),
            ("in-not", {"not": {"participant.preset": "guest"}}, JOINED, True),
            ("deep", {"any": [{"not": {"any": [{"participant.preset": "x"}]}}]}, JOINED, True),
            ("other-trigger", {"participant.preset": "host"}, LEFT, False),
        ]
    ),
)
def test_reads_preset(when: dict[str, Any] | None, on: str, expected: bool) -> None:
    policy = policy_of(rule(on=on, when=when), rule("plain", on=JOINED))
    assert policy.reads_preset(JOINED) is expected
    assert not policy.reads_preset(STARTED)


@pytest.mark.parametrize(
    ("recording", "changes", "expected"),
    cases(
        [
            (
                "meeting-id",
                {"file_name_prefix": "board-{meeting.id}"},
                {},
                {"file_name_prefix": "board-m-1"},
            ),
            (
                "title",
                {"file_name_prefix": "{meeting.title}"},
                {},
                {"file_name_prefix": "Weekly sync"},
            ),
            (
                "title-missing",
                {"file_name_prefix": "{meeting.title}"},
                {"title": None},
                {"file_name_prefix": ""},
            ),
            (
                "participant",
                {"file_name_prefix": "u-{participant.custom_participant_id}"},
                {},
                {"file_name_prefix": "u-user-1"},
            ),
            (
                "no-participant",
                {"file_name_prefix": "u-{participant.custom_participant_id}"},
                {"participant": None},
                {"file_name_prefix": "u-"},
            ),
            ("date", {"file_name_prefix": "{date}"}, {}, {"file_name_prefix": "2026-06-03"}),
            (
                "escaped-braces",
                {"file_name_prefix": "{{date}}-{{{date}}}"},
                {},
                {"file_name_prefix": "{date}-{2026-06-03}"},
            ),
            (
                "nested",
                {"video_config": {"tags": ["{meeting.id}", 3]}, "max_seconds": 60},
                {},
                {"video_config": {"tags": ["m-1", 3]}, "max_seconds": 60},
            ),
        ]
    ),
)
def test_templates(
    recording: dict[str, Any], changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    evaluation = policy_of(rule(recording=recording)).evaluate(make_input(**changes))
    assert evaluation.recording == expected


def test_date_is_the_utc_date_of_the_event() -> None:
    late = dt.datetime(2026, 6, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    evaluation = policy_of(rule(recording={"file_name_prefix": "{date}"})).evaluate(
        make_input(event_time=late)
    )
    assert evaluation.recording == {"file_name_prefix": "2026-06-04"}


def test_templates_do_not_touch_the_policy() -> None:
    policy = policy_of(rule(recording={"file_name_prefix": "{meeting.id}"}))
    policy.evaluate(make_input(meeting_id="a"))
    assert policy.evaluate(make_input(meeting_id="b")).recording == {"file_name_prefix": "b"}


@pytest.mark.parametrize(
    ("recording", "expected"),
    cases(
        [
            ("absent", {}, False),
            ("false", {"allow_multiple_recordings": False}, False),
            ("true", {"allow_multiple_recordings": True}, True),
        ]
    ),
)
def test_allow_multiple(recording: dict[str, Any], expected: bool) -> None:
    evaluation = policy_of(rule(recording=recording)).evaluate(make_input())
    assert evaluation.allow_multiple is expected
    assert evaluation.recording == recording  # passed on to RTK as well
