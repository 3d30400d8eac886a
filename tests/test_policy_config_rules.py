"""Rule-level configuration: recording options, unique names, the schema around `when`,
the forms that are accepted, and locations that map to YAML lines."""

from __future__ import annotations

from typing import Any

import pytest

from router.core.policy import PolicyConfig, Rule
from router.yamlsource import load_yaml
from tests.plugins.policy import (
    JOINED,
    LEFT,
    STARTED,
    Loc,
    assert_one_error,
    cases,
    config_errors,
    rule,
    when_config,
)

REC: Loc = ("rules", 0, "recording")


@pytest.mark.parametrize(
    ("recording", "loc", "message"),
    cases(
        [
            (
                "unknown-placeholder",
                {"file_name_prefix": "{meeting.uid}"},
                (*REC, "file_name_prefix"),
                "unknown placeholder '{meeting.uid}'; known: {meeting.id}",
            ),
            (
                "unclosed-nested",
                {"video_config": {"watermark": {"text": "{oops"}}},
                (*REC, "video_config", "watermark", "text"),
                "an unclosed '{'",
            ),
            ("stray-close-in-list", {"tags": ["ok", "x}"]}, (*REC, "tags", 1), "a single '}'"),
            (
                "meeting-id-reserved",
                {"meeting_id": "other"},
                (*REC, "meeting_id"),
                "meeting_id is set by the router",
            ),
            (
                "allow-multiple-bool",
                {"allow_multiple_recordings": "yes"},
                (*REC, "allow_multiple_recordings"),
                "expected true or false",
            ),
            (
                "non-text-key",
                {"storage_config": {1: "x"}},
                (*REC, "storage_config"),
                "keys must be text, got 1",
            ),
        ]
    ),
)
def test_recording_errors_point_at_their_key(recording: Any, loc: Loc, message: str) -> None:
    assert_one_error(config_errors({"rules": [rule(recording=recording)]}), loc, message)


@pytest.mark.parametrize("action", ["skip", "stop_recording"])
def test_recording_options_only_on_start(action: str) -> None:
    raw = {"rules": [rule(action=action, recording={"max_seconds": 60})]}
    message = f"recording options apply to start_recording, not {action}"
    assert config_errors(raw) == [(("rules", 0, "recording"), message)]


def test_duplicate_name_is_reported_with_the_other_problems() -> None:
    raw = {
        "rules": [
            rule("a"),
            rule("a", when={"meeting.title": {"regexp": "x"}}),
            rule("b", action="explode"),
            rule("b"),
        ]
    }
    errors = config_errors(raw)
    assert (("rules", 1, "name"), "duplicate rule name 'a' (first at rules[0])") in errors
    assert (("rules", 3, "name"), "duplicate rule name 'b' (first at rules[2])") in errors
    assert (("rules", 1, "when", "meeting.title"), "unknown operator 'regexp'") in errors
    assert ("rules", 2, "action") in [loc for loc, _ in errors]
    assert len(errors) == 4


def test_duplicate_names_in_python_construction() -> None:
    with pytest.raises(ValueError, match=r"duplicate rule name 'x' \(first at rules\[0\]\)"):
        PolicyConfig(rules=[Rule(name="x", action="skip"), Rule(name="x", action="skip")])


@pytest.mark.parametrize(
    ("raw", "loc"),
    cases(
        [
            ("name-missing", {"rules": [{"action": "skip"}]}, ("rules", 0, "name")),
            ("name-empty", {"rules": [rule(name="")]}, ("rules", 0, "name")),
            ("unknown-trigger", {"rules": [rule(on="meeting.ended")]}, ("rules", 0, "on")),
            ("yaml-on-as-bool", {"rules": [rule(on=True)]}, ("rules", 0, "on")),
            ("unknown-action", {"rules": [rule(action="record")]}, ("rules", 0, "action")),
            ("action-missing", {"rules": [{"name": "r"}]}, ("rules", 0, "action")),
            ("unknown-rule-key", {"rules": [rule(priority=1)]}, ("rules", 0, "priority")),
            ("recording-not-map", {"rules": [rule(recording=[1])]}, ("rules", 0, "recording")),
            ("unknown-mode", {"mode": "dry-run"}, ("mode",)),
            ("unknown-policy-key", {"strict": True}, ("strict",)),
            ("rules-not-list", {"rules": {"name": "r"}}, ("rules",)),
        ]
    ),
)
def test_schema_errors_point_at_their_key(raw: Any, loc: Loc) -> None:
    assert [error_loc for error_loc, _ in config_errors(raw)] == [loc]


@pytest.mark.parametrize(
    "when",
    cases(
        [
            ("omitted", None),
            ("empty", {}),
            ("scalar-text", {"meeting.title": "Board"}),
            ("scalar-number", {"session.participants": 2}),
            ("scalar-float", {"session.participants": 2.5}),
            ("two-operators", {"meeting.title": {"regex": "^Board", "not_equals": "Board test"}}),
            ("empty-in", {"meeting.id": {"in": []}}),
            ("empty-not-in", {"meeting.id": {"not_in": []}}),
            ("numbers-in", {"session.participants": {"in": [1, 2.0]}}),
            ("exists-false", {"participant.preset": {"exists": False}}),
            ("recording-none", {"session.recording": "none"}),
            ("not-empty", {"not": {}}),
            ("any-with-empty", {"any": [{}, {"meeting.title": "x"}]}),
            ("days-any-case", {"time": {"days": ["Mon", "SUN"]}}),
            ("one-digit-hour", {"time": {"from": "9:30"}}),
            ("to-end-of-day", {"time": {"from": "22:00", "to": "24:00"}}),
            ("wrap", {"time": {"from": "22:00", "to": "06:00", "timezone": "Asia/Tokyo"}}),
            ("from-midnight", {"time": {"from": "00:00"}}),
        ]
    ),
)
def test_valid_conditions_are_accepted(when: Any) -> None:
    assert config_errors(when_config(when)) == []


def test_defaults() -> None:
    config = PolicyConfig.model_validate({"rules": [{"name": "r", "action": "skip"}]})
    assert config.mode == "enforce"
    assert config.rules[0].on == JOINED
    assert config.rules[0].when is None
    assert config.rules[0].recording == {}
    assert PolicyConfig().rules == []
    assert PolicyConfig.model_validate({"rules": None}).rules == []
    assert PolicyConfig.model_validate({"rules": [rule(recording=None)]}).rules[0].recording == {}


@pytest.mark.parametrize("trigger", [JOINED, LEFT, STARTED])
def test_triggers_accepted(trigger: str) -> None:
    assert PolicyConfig.model_validate({"rules": [rule(on=trigger)]}).rules[0].on == trigger


def test_recording_options_are_free_form() -> None:
    options = {
        "max_seconds": 3600,
        "file_name_prefix": "board-{meeting.id}-{{literal}}",
        "video_config": {"codec": "H264", "width": 1280, "watermark": {"url": None}},
        "allow_multiple_recordings": True,
    }
    config = PolicyConfig.model_validate({"rules": [rule(recording=options)]})
    assert config.rules[0].recording == options


def test_yaml_keys_map_to_lines() -> None:
    text = (
        "rules:\n"
        "  - name: board\n"
        "    on: meeting.participantJoined\n"
        "    when:\n"
        "      meeting.title: {regexp: '^Board'}\n"
        "      time: {days: [mon, funday]}\n"
        "    action: start_recording\n"
    )
    doc = load_yaml(text, {})
    assert doc.data["rules"][0]["on"] == JOINED
    errors = config_errors(doc.data)
    assert [(doc.line_of(loc), loc) for loc, _ in errors] == [
        (5, ("rules", 0, "when", "meeting.title")),
        (6, ("rules", 0, "when", "time", "days", 1)),
    ]


def test_example_policy_is_valid(example_policy_text: str) -> None:
    doc = load_yaml(example_policy_text, {})
    assert config_errors(doc.data["policy"]) == []
