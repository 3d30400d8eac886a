"""The schema check against the last published schemas: each kind of breaking change is found,
additions pass, and a consumer validating with the published schemas accepts added fields."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from router import schemagen
from router.core.records import RECORD_TYPES
from router.schemacompat import breaking_changes

PUBLISHED_DIR = schemagen.SCHEMA_DIR / schemagen.PUBLISHED


def published() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in PUBLISHED_DIR.glob("*.json")
    }


def changed(record_type: str, edit: Any) -> list[str]:
    """The breaking changes found when `edit` is applied to one published schema."""
    old = published()
    new = copy.deepcopy(old)
    edit(new[record_type])
    return breaking_changes(old, new)


def test_every_record_type_is_published_and_the_models_break_nothing() -> None:
    assert set(published()) == set(RECORD_TYPES)
    assert schemagen.incompatible() == []


def _remove(field: str) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        del schema["properties"][field]
        schema["required"].remove(field)

    return edit


def _rename(field: str, to: str) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        schema["properties"][to] = schema["properties"].pop(field)
        schema["required"] = [to if name == field else name for name in schema["required"]]

    return edit


def _set(field: str, value: dict[str, Any]) -> Any:
    def edit(schema: dict[str, Any]) -> None:
        schema["properties"][field] = value

    return edit


def _drop_outcome(schema: dict[str, Any]) -> None:
    schema["properties"]["outcome"]["enum"].remove("failed")


def _drop_nested(schema: dict[str, Any]) -> None:
    del schema["$defs"]["DecisionParticipant"]["properties"]["preset"]


def _close(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = False


BREAKING = [
    ("policy.decision", _remove("rule"), "rule: field removed"),
    ("policy.decision", _rename("rule", "rule_name"), "rule: field removed (or renamed)"),
    (
        "policy.decision",
        _set("session_id", {"type": "string"}),
        "session_id: type narrowed, no longer null",
    ),
    (
        "meeting.started",
        _set("title", {"type": "integer"}),
        "title: type narrowed, no longer null, string",
    ),
    ("policy.decision", _drop_outcome, "outcome: value 'failed' removed"),
    (
        "policy.decision",
        _set("trigger", {"enum": ["meeting.participantJoined"], "type": "string"}),
        "trigger: restricted to the values 'meeting.participantJoined'",
    ),
    ("policy.decision", _drop_nested, "participant.preset: field removed"),
    ("policy.decision", _close, "(record): closed to new fields"),
]


@pytest.mark.parametrize(
    ("record_type", "edit", "problem"),
    BREAKING,
    ids=["removed", "renamed", "nullable", "type", "enum", "restricted", "nested", "closed"],
)
def test_a_breaking_change_is_found(record_type: str, edit: Any, problem: str) -> None:
    problems = changed(record_type, edit)
    assert any(problem in p for p in problems), problems
    assert all(p.startswith(f"{record_type}: ") for p in problems)


def test_an_optional_field_made_required_is_found() -> None:
    old = published()
    old["policy.decision"]["required"].remove("error")
    assert breaking_changes(old, published()) == [
        "policy.decision: error: optional field became required"
    ]


def test_a_removed_record_type_is_found() -> None:
    current = published()
    del current["meeting.chat_ready"]
    assert breaking_changes(published(), current) == ["meeting.chat_ready: record type removed"]


def _additions(schemas: dict[str, dict[str, Any]]) -> None:
    """What a change may add within version 1: a field on decisions, a field on every record,
    a new record type, a new outcome, a wider type."""
    decision = schemas["policy.decision"]
    decision["properties"]["hint"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    decision["required"].append("hint")
    decision["properties"]["outcome"]["enum"].append("reconciled")
    decision["properties"]["meeting_id"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    for schema in schemas.values():
        schema["properties"]["tenant"] = {"type": "string"}
        schema["required"].append("tenant")
    added = copy.deepcopy(schemas["meeting.ended"])
    added["title"] = "meeting.paused"
    added["properties"]["type"] = {"const": "meeting.paused", "type": "string"}
    schemas["meeting.paused"] = added


def test_additions_pass() -> None:
    current = published()
    _additions(current)
    assert breaking_changes(published(), current) == []


def test_a_consumer_of_the_published_schema_accepts_an_added_field() -> None:
    schema = published()["policy.decision"]
    record = dict.fromkeys(schema["properties"])
    record.update(
        type="policy.decision",
        version=1,
        meeting_id="m-1",
        trigger="meeting.participantJoined",
        action="none",
        outcome="no_match",
        mode="shadow",
        policy_version="0123456789ab",
        decided_at="2026-06-03T10:30:00.000Z",
        explanation=[],
        hint="no rule matched",  # (a field added after the schema was published)
    )
    jsonschema.Draft202012Validator(schema).validate(record)


def test_check_fails_on_a_breaking_change_and_publish_moves_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert schemagen.main(["write", "--dir", str(tmp_path)]) == 0
    shutil.copytree(PUBLISHED_DIR, tmp_path / schemagen.PUBLISHED)
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 0
    # A baseline that knew one more outcome: the current models removed it.
    baseline = tmp_path / schemagen.PUBLISHED / "policy.decision.json"
    schema = json.loads(baseline.read_text())
    schema["properties"]["outcome"]["enum"].append("postponed")
    baseline.write_text(json.dumps(schema))
    capsys.readouterr()
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "breaking change: policy.decision: outcome: value 'postponed' removed" in err
    assert schemagen.main(["publish", "--dir", str(tmp_path)]) == 0
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 0
