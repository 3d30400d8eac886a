"""Conditions: every operator on present and missing values, `any`, `not` and nesting, and
the reasons a trace gives for each check."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.policy import STARTED, cases, make_input, policy_of, rule


def _matches(when: dict[str, Any], **changes: Any) -> bool:
    evaluation = policy_of(rule(when=when)).evaluate(make_input(**changes))
    return evaluation.outcome_hint == "match"


# The default input: title "Weekly sync", preset missing, 1 participant, recording "none".
@pytest.mark.parametrize(
    ("when", "changes", "expected"),
    cases(
        [
            ("scalar-true", {"meeting.title": "Weekly sync"}, {}, True),
            ("scalar-case-sensitive", {"meeting.title": "weekly sync"}, {}, False),
            ("scalar-missing", {"meeting.title": "x"}, {"title": None}, False),
            ("scalar-number", {"session.participants": 1}, {}, True),
            ("scalar-float-equals-int", {"session.participants": 1.0}, {}, True),
            ("equals-true", {"meeting.title": {"equals": "Weekly sync"}}, {}, True),
            ("equals-false", {"meeting.title": {"equals": "Board"}}, {}, False),
            ("equals-missing", {"meeting.title": {"equals": ""}}, {"title": None}, False),
            ("equals-empty", {"meeting.title": {"equals": ""}}, {"title": ""}, True),
            ("not-equals-true", {"meeting.title": {"not_equals": "Board"}}, {}, True),
            ("not-equals-false", {"meeting.title": {"not_equals": "Weekly sync"}}, {}, False),
            ("not-equals-missing", {"meeting.title": {"not_equals": "x"}}, {"title": None}, True),
            (
                "in-true",
                {"participant.preset": {"in": ["host", "board"]}},
                {"preset": "board"},
                True,
            ),
            (
                "in-false",
                {"participant.preset": {"in": ["host", "board"]}},
                {"preset": "guest"},
                False,
            ),
            ("in-missing", {"participant.preset": {"in": ["host"]}}, {}, False),
            ("in-empty", {"participant.preset": {"in": []}}, {"preset": "host"}, False),
            ("in-numbers", {"session.participants": {"in": [1, 2]}}, {}, True),
            (
                "not-in-true",
                {"participant.preset": {"not_in": ["guest"]}},
                {"preset": "host"},
                True,
            ),
            (
                "not-in-false",
                {"participant.preset": {"not_in": ["guest"]}},
                {"preset": "guest"},
                False,
            ),
            ("not-in-missing", {"participant.preset": {"not_in": ["guest"]}}, {}, True),
            ("not-in-empty", {"participant.preset": {"not_in": []}}, {"preset": "x"}, True),
            ("regex-searches", {"meeting.title": {"regex": "sync$"}}, {}, True),
            ("regex-false", {"meeting.title": {"regex": "^sync"}}, {}, False),
            ("regex-inline-flag", {"meeting.title": {"regex": "(?i)^WEEKLY"}}, {}, True),
            ("regex-missing", {"meeting.title": {"regex": ".*"}}, {"title": None}, False),
            ("glob-true", {"meeting.title": {"glob": "Weekly*"}}, {}, True),
            ("glob-case-sensitive", {"meeting.title": {"glob": "weekly*"}}, {}, False),
            ("glob-whole-string", {"meeting.title": {"glob": "*sync"}}, {}, True),
            ("glob-not-search", {"meeting.title": {"glob": "sync"}}, {}, False),
            ("glob-missing", {"meeting.title": {"glob": "*"}}, {"title": None}, False),
            ("contains-true", {"meeting.title": {"contains": "ly s"}}, {}, True),
            ("contains-false", {"meeting.title": {"contains": "Board"}}, {}, False),
            ("contains-missing", {"meeting.title": {"contains": ""}}, {"title": None}, False),
            ("gt-true", {"session.participants": {"gt": 1}}, {"participants": 2}, True),
            ("gt-boundary", {"session.participants": {"gt": 1}}, {}, False),
            ("gte-boundary", {"session.participants": {"gte": 2}}, {"participants": 2}, True),
            ("gte-false", {"session.participants": {"gte": 2}}, {}, False),
            ("lt-true", {"session.participants": {"lt": 2}}, {}, True),
            ("lt-boundary", {"session.participants": {"lt": 1}}, {}, False),
            ("lte-boundary", {"session.participants": {"lte": 1}}, {}, True),
            ("lte-false", {"session.participants": {"lte": 0}}, {}, False),
            ("gt-float", {"session.participants": {"gt": 0.5}}, {}, True),
            (
                "distinct",
                {"session.distinct_participants": {"gte": 3}},
                {"distinct_participants": 3},
                True,
            ),
            (
                "range-inside",
                {"session.participants": {"gte": 1, "lte": 3}},
                {"participants": 3},
                True,
            ),
            (
                "range-outside",
                {"session.participants": {"gte": 1, "lte": 3}},
                {"participants": 4},
                False,
            ),
            ("exists-present", {"participant.preset": {"exists": True}}, {"preset": "host"}, True),
            ("exists-missing", {"participant.preset": {"exists": True}}, {}, False),
            ("not-exists-missing", {"participant.preset": {"exists": False}}, {}, True),
            ("not-exists-empty", {"participant.preset": {"exists": False}}, {"preset": ""}, False),
            ("recording-none", {"session.recording": "none"}, {}, True),
            (
                "recording-active",
                {"session.recording": {"in": ["RECORDING", "PAUSED"]}},
                {"recording": "PAUSED"},
                True,
            ),
            ("all-hold", {"meeting.id": "m-1", "meeting.session_id": "s-1"}, {}, True),
            ("one-fails", {"meeting.id": "m-1", "meeting.session_id": "s-2"}, {}, False),
            ("organization", {"meeting.organization_id": {"glob": "org-*"}}, {}, True),
            ("peer-id", {"participant.peer_id": "peer-1"}, {}, True),
            ("display-name", {"participant.display_name": {"contains": "Sue"}}, {}, True),
            (
                "custom-id",
                {"participant.custom_participant_id": {"regex": r"^user-\d+$"}},
                {},
                True,
            ),
        ]
    ),
)
def test_operators(when: dict[str, Any], changes: dict[str, Any], expected: bool) -> None:
    assert _matches(when, **changes) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    cases(
        [
            ("exists-false", {"participant.peer_id": {"exists": False}}, True),
            ("not-equals", {"participant.display_name": {"not_equals": "x"}}, True),
            ("not-in", {"participant.preset": {"not_in": ["host"]}}, True),
            ("regex", {"participant.custom_participant_id": {"regex": ""}}, False),
            ("equals", {"participant.peer_id": {"equals": ""}}, False),
        ]
    ),
)
def test_meeting_events_have_no_participant(when: dict[str, Any], expected: bool) -> None:
    policy = policy_of(rule(on=STARTED, when=when))
    evaluation = policy.evaluate(make_input(STARTED, participant=None))
    assert (evaluation.outcome_hint == "match") is expected


BOARD = {"meeting.title": {"regex": "^Board"}}
HOST = {"participant.preset": "host"}


@pytest.mark.parametrize(
    ("when", "changes", "expected"),
    cases(
        [
            ("any-first", {"any": [BOARD, HOST]}, {"title": "Board Q3"}, True),
            ("any-second", {"any": [BOARD, HOST]}, {"preset": "host"}, True),
            ("any-none", {"any": [BOARD, HOST]}, {}, False),
            ("any-empty-map-holds", {"any": [{}]}, {}, True),
            ("not-true", {"not": BOARD}, {}, True),
            ("not-false", {"not": BOARD}, {"title": "Board Q3"}, False),
            ("not-empty-never", {"not": {}}, {}, False),
            ("not-any", {"not": {"any": [BOARD, HOST]}}, {}, True),
            ("not-any-false", {"not": {"any": [BOARD, HOST]}}, {"preset": "host"}, False),
            ("any-not", {"any": [{"not": BOARD}, HOST]}, {"title": "Board"}, False),
            (
                "any-of-alls",
                {"any": [{**BOARD, **HOST}, {"session.participants": {"gte": 5}}]},
                {"title": "Board", "preset": "host"},
                True,
            ),
            ("all-inside-any", {"any": [{**BOARD, **HOST}]}, {"title": "Board"}, False),
            (
                "any-and-not",
                {"any": [BOARD], "not": HOST},
                {"title": "Board", "preset": "guest"},
                True,
            ),
            (
                "any-and-not-false",
                {"any": [BOARD], "not": HOST},
                {"title": "Board", "preset": "host"},
                False,
            ),
            ("double-not", {"not": {"not": BOARD}}, {"title": "Board"}, True),
            ("deep", {"any": [{"any": [{"not": {"not": HOST}}]}]}, {"preset": "host"}, True),
        ]
    ),
)
def test_combinators(when: dict[str, Any], changes: dict[str, Any], expected: bool) -> None:
    assert _matches(when, **changes) is expected


@pytest.mark.parametrize(
    ("when", "changes", "reasons"),
    cases(
        [
            (
                "regex",
                {"meeting.title": {"regex": "^Board"}},
                {},
                ["meeting.title 'Weekly sync' matches regex '^Board': no"],
            ),
            (
                "missing",
                {"participant.preset": {"in": ["host"]}},
                {},
                ["participant.preset (missing) in ['host']: no"],
            ),
            (
                "not-in",
                {"participant.preset": {"not_in": ["guest"]}},
                {"preset": "host"},
                ["participant.preset 'host' not in ['guest']: yes"],
            ),
            (
                "every-check",
                {"meeting.title": {"glob": "W*", "contains": "x"}},
                {},
                [
                    "meeting.title 'Weekly sync' matches glob 'W*': yes",
                    "meeting.title 'Weekly sync' contains 'x': no",
                ],
            ),
            (
                "exists",
                {"participant.preset": {"exists": False}},
                {},
                ["participant.preset (missing) is missing: yes"],
            ),
            ("equals", {"meeting.id": "m-1"}, {}, ["meeting.id 'm-1' == 'm-1': yes"]),
            (
                "not-equals",
                {"session.recording": {"not_equals": "none"}},
                {},
                ["session.recording 'none' != 'none': no"],
            ),
            (
                "nested-paths",
                {"any": [{"meeting.id": "x"}, {"not": {"session.participants": {"lt": 1}}}]},
                {},
                [
                    "any: 1 of 2 held: yes",
                    "any[0]: meeting.id 'm-1' == 'x': no",
                    "any[1].not: nested conditions did not hold: yes",
                    "any[1].not: session.participants 1 < 1: no",
                ],
            ),
            (
                "time",
                {"time": {"days": ["sat", "sun"]}},
                {},
                ["time Wed 2026-06-03 12:00 UTC within sat,sun: no"],
            ),
        ]
    ),
)
def test_reasons(when: dict[str, Any], changes: dict[str, Any], reasons: list[str]) -> None:
    evaluation = policy_of(rule(when=when)).evaluate(make_input(**changes))
    assert list(evaluation.trace[0].reasons) == reasons


def test_long_values_are_shortened_in_reasons() -> None:
    evaluation = policy_of(rule(when={"meeting.title": "x"})).evaluate(make_input(title="y" * 500))
    (reason,) = evaluation.trace[0].reasons
    assert len(reason) < 120
    assert "…" in reason
