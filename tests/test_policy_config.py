"""Problems inside `when` are refused, each once, at the exact path of the key that causes it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.policy import WHEN, Loc, assert_one_error, cases, config_errors, when_config


def test_unknown_operator_is_one_error_at_the_field() -> None:
    raw = {"rules": [{"name": "r", "when": {"meeting.title": {"regexp": "x"}}, "action": "skip"}]}
    loc = ("rules", 0, "when", "meeting.title")
    assert config_errors(raw) == [(loc, "unknown operator 'regexp'")]


@pytest.mark.parametrize(
    ("when", "loc", "message"),
    cases(
        [
            (
                "unknown-field",
                {"meeting.titel": "x"},
                (*WHEN, "meeting.titel"),
                "unknown field 'meeting.titel'",
            ),
            ("unknown-combinator", {"all": []}, (*WHEN, "all"), "unknown field 'all'"),
            (
                "bad-regex",
                {"meeting.title": {"regex": "("}},
                (*WHEN, "meeting.title", "regex"),
                "invalid regex '(': missing )",
            ),
            (
                "no-operator",
                {"meeting.title": {}},
                (*WHEN, "meeting.title"),
                "expected at least one operator",
            ),
            (
                "null-condition",
                {"meeting.title": None},
                (*WHEN, "meeting.title"),
                "expected a value or a map of operators",
            ),
            (
                "bare-list",
                {"participant.preset": ["a", "b"]},
                (*WHEN, "participant.preset"),
                "a list is not a condition; use {in: [...]}",
            ),
            (
                "number-for-text",
                {"participant.custom_participant_id": 12345},
                (*WHEN, "participant.custom_participant_id"),
                "got the number 12345 (quote it in YAML)",
            ),
            (
                "yaml-yes-for-text",
                {"participant.preset": True},
                (*WHEN, "participant.preset"),
                "got the boolean true (quote it in YAML)",
            ),
            (
                "text-for-number",
                {"session.participants": "2"},
                (*WHEN, "session.participants"),
                "expected a number, got the text '2'",
            ),
            (
                "gte-needs-number",
                {"session.participants": {"gte": "2"}},
                (*WHEN, "session.participants", "gte"),
                "expected a number, got the text '2'",
            ),
            (
                "gt-bool",
                {"session.participants": {"gt": True}},
                (*WHEN, "session.participants", "gt"),
                "expected a number, got the boolean true",
            ),
            (
                "lt-nan",
                {"session.participants": {"lt": float("nan")}},
                (*WHEN, "session.participants", "lt"),
                "expected a finite number",
            ),
            (
                "lte-null",
                {"session.participants": {"lte": None}},
                (*WHEN, "session.participants", "lte"),
                "expected a number, got null",
            ),
            (
                "order-on-text",
                {"meeting.title": {"gt": 3}},
                (*WHEN, "meeting.title", "gt"),
                "'gt' compares numbers; meeting.title is text",
            ),
            (
                "regex-on-number",
                {"session.participants": {"regex": "1"}},
                (*WHEN, "session.participants", "regex"),
                "'regex' applies to text",
            ),
            (
                "glob-on-number",
                {"session.participants": {"glob": "1*"}},
                (*WHEN, "session.participants", "glob"),
                "'glob' applies to text",
            ),
            (
                "contains-on-number",
                {"session.participants": {"contains": "1"}},
                (*WHEN, "session.participants", "contains"),
                "'contains' applies to text",
            ),
            (
                "in-needs-list",
                {"meeting.title": {"in": "Board"}},
                (*WHEN, "meeting.title", "in"),
                "expected a list",
            ),
            (
                "not-in-needs-list",
                {"meeting.title": {"not_in": {"a": 1}}},
                (*WHEN, "meeting.title", "not_in"),
                "expected a list",
            ),
            (
                "in-item-type",
                {"meeting.title": {"in": ["a", 2]}},
                (*WHEN, "meeting.title", "in", 1),
                "expected text, got the number 2",
            ),
            (
                "in-number-item-type",
                {"session.participants": {"in": [1, "2"]}},
                (*WHEN, "session.participants", "in", 1),
                "expected a number, got the text '2'",
            ),
            (
                "equals-list",
                {"meeting.title": {"equals": ["x"]}},
                (*WHEN, "meeting.title", "equals"),
                "expected text, got a list",
            ),
            (
                "not-equals-null",
                {"meeting.title": {"not_equals": None}},
                (*WHEN, "meeting.title", "not_equals"),
                "expected text, got null",
            ),
            (
                "regex-not-text",
                {"meeting.title": {"regex": 5}},
                (*WHEN, "meeting.title", "regex"),
                "expected text, got the number 5",
            ),
            (
                "glob-not-text",
                {"meeting.title": {"glob": None}},
                (*WHEN, "meeting.title", "glob"),
                "expected text, got null",
            ),
            (
                "contains-not-text",
                {"meeting.title": {"contains": {}}},
                (*WHEN, "meeting.title", "contains"),
                "expected text, got a map",
            ),
            (
                "exists-needs-bool",
                {"meeting.title": {"exists": "yes"}},
                (*WHEN, "meeting.title", "exists"),
                "expected true or false",
            ),
            (
                "any-not-list",
                {"any": {"meeting.title": "x"}},
                (*WHEN, "any"),
                "expected a list of condition maps",
            ),
            ("any-empty", {"any": []}, (*WHEN, "any"), "expected at least one condition map"),
            ("any-item-not-map", {"any": ["x"]}, (*WHEN, "any", 0), "expected a map of conditions"),
            (
                "inside-any",
                {"any": [{"meeting.title": {"regexp": "x"}}]},
                (*WHEN, "any", 0, "meeting.title"),
                "unknown operator 'regexp'",
            ),
            (
                "not-not-map",
                {"not": [{"meeting.title": "x"}]},
                (*WHEN, "not"),
                "expected a map of conditions",
            ),
            (
                "inside-not",
                {"not": {"meeting.nope": "x"}},
                (*WHEN, "not", "meeting.nope"),
                "unknown field 'meeting.nope'",
            ),
            (
                "deeply-nested",
                {"any": [{"not": {"any": [{"x": 1}]}}]},
                (*WHEN, "any", 0, "not", "any", 0, "x"),
                "unknown field 'x'",
            ),
            ("when-not-map", ["meeting.title"], WHEN, "expected a map of conditions"),
        ]
    ),
)
def test_condition_errors_point_at_their_key(when: Any, loc: Loc, message: str) -> None:
    assert_one_error(config_errors(when_config(when)), loc, message)


TIME = (*WHEN, "time")


@pytest.mark.parametrize(
    ("time", "loc", "message"),
    cases(
        [
            ("not-a-map", "9-5", TIME, "expected a map with days, from, to, timezone"),
            (
                "nothing-to-judge",
                {"timezone": "UTC"},
                TIME,
                "expected at least one of days, from, to",
            ),
            ("unknown-key", {"days": ["mon"], "hours": "9-5"}, TIME, "unknown time key 'hours'"),
            ("no-days", {"days": []}, (*TIME, "days"), "expected a non-empty list of mon"),
            ("days-not-list", {"days": "mon"}, (*TIME, "days"), "expected a non-empty list of mon"),
            (
                "unknown-day",
                {"days": ["mon", "monday"]},
                (*TIME, "days", 1),
                "unknown day 'monday'; use mon, tue",
            ),
            ("bad-clock", {"from": "8am"}, (*TIME, "from"), 'expected "HH:MM"'),
            ("from-24", {"from": "24:00"}, (*TIME, "from"), 'expected "HH:MM"'),
            ("minute-60", {"to": "12:60"}, (*TIME, "to"), 'expected "HH:MM"'),
            ("unquoted-sexagesimal", {"to": 1080}, (*TIME, "to"), "(quote it in YAML)"),
            (
                "empty-window",
                {"from": "09:00", "to": "09:00"},
                (*TIME, "to"),
                "the window is empty",
            ),
            ("to-midnight-alone", {"to": "00:00"}, (*TIME, "to"), "the window is empty"),
            (
                "unknown-timezone",
                {"days": ["mon"], "timezone": "Mars/Olympus"},
                (*TIME, "timezone"),
                "unknown timezone 'Mars/Olympus'",
            ),
            (
                "path-timezone",
                {"days": ["mon"], "timezone": "../etc/passwd"},
                (*TIME, "timezone"),
                "unknown timezone '../etc/passwd'",
            ),
            (
                "empty-timezone",
                {"days": ["mon"], "timezone": ""},
                (*TIME, "timezone"),
                "unknown timezone ''",
            ),
        ]
    ),
)
def test_time_errors_point_at_their_key(time: Any, loc: Loc, message: str) -> None:
    assert_one_error(config_errors(when_config({"time": time})), loc, message)
