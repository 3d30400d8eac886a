"""Fixtures and builders for the policy tests: terse inputs and policies, the sample data,
and hypothesis strategies for rules and events."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from pydantic import ValidationError

from router.core.policy import (
    MeetingFacts,
    ParticipantFacts,
    Policy,
    PolicyConfig,
    PolicyInput,
)
from router.yamlsource import load_yaml

DATA = Path(__file__).resolve().parent.parent / "data"
JOINED = "meeting.participantJoined"
LEFT = "meeting.participantLeft"
STARTED = "meeting.started"
# A Wednesday, 12:00 in UTC and 14:00 in Berlin.
WEDNESDAY_NOON = dt.datetime(2026, 6, 3, 12, 0, tzinfo=dt.UTC)


def make_input(trigger: str = JOINED, **changes: Any) -> PolicyInput:
    """A joined event in a meeting of one; any field of the input or of its meeting and
    participant facts can be overridden by name (`title=`, `preset=`, `participants=`...)."""
    meeting = MeetingFacts(id="m-1", title="Weekly sync", session_id="s-1", organization_id="org-1")
    participant = ParticipantFacts(
        peer_id="peer-1", custom_participant_id="user-1", display_name="Mary Sue", preset=None
    )
    meeting_changes = {k: changes.pop(k) for k in list(changes) if k in _MEETING}
    participant_changes = {k: changes.pop(k) for k in list(changes) if k in _PARTICIPANT}
    if "meeting_id" in changes:
        meeting_changes["id"] = changes.pop("meeting_id")
    base = PolicyInput(
        trigger=trigger,
        meeting=dataclasses.replace(meeting, **meeting_changes),
        participant=dataclasses.replace(participant, **participant_changes),
        participants=1,
        distinct_participants=1,
        recording="none",
        event_time=WEDNESDAY_NOON,
    )
    return dataclasses.replace(base, **changes)


_MEETING = {"title", "session_id", "organization_id"}
_PARTICIPANT = {"peer_id", "custom_participant_id", "display_name", "preset"}


def policy_of(*rules: dict[str, Any], mode: str = "enforce") -> Policy:
    """A compiled policy of these raw rules (as they would come from YAML)."""
    return Policy.from_config(PolicyConfig.model_validate({"mode": mode, "rules": list(rules)}))


def rule(name: str = "r", action: str = "start_recording", **fields: Any) -> dict[str, Any]:
    """A raw rule; `when=`, `on=`, `recording=` pass through."""
    return {"name": name, "action": action, **fields}


Loc = tuple[str | int, ...]
WHEN: Loc = ("rules", 0, "when")


def when_config(when: Any) -> dict[str, Any]:
    """A raw policy of one `skip` rule with this `when`."""
    return {"rules": [rule(action="skip", when=when)]}


def assert_one_error(errors: list[tuple[Loc, str]], loc: Loc, message: str) -> None:
    """Exactly one error, at `loc`, whose message contains `message`."""
    assert [error_loc for error_loc, _ in errors] == [loc]
    assert message in errors[0][1], errors[0][1]


def config_errors(raw: Any) -> list[tuple[Loc, str]]:
    """`(loc, msg)` of every validation error of `raw` as a policy section (empty: valid)."""
    try:
        PolicyConfig.model_validate(raw)
    except ValidationError as exc:
        return [(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
    return []


@pytest.fixture
def sample_event() -> Any:
    """Load a sample webhook body from tests/data by file stem."""

    def load(stem: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((DATA / f"{stem}.json").read_text("utf-8"))
        return loaded

    return load


@pytest.fixture
def example_policy_text() -> str:
    """The example configuration of tests/data/policy.yaml, as text."""
    return (DATA / "policy.yaml").read_text("utf-8")


@pytest.fixture
def example_policy(example_policy_text: str) -> Policy:
    """The example policy of tests/data/policy.yaml, compiled."""
    doc = load_yaml(example_policy_text, {})
    return Policy.from_config(PolicyConfig.model_validate(doc.data["policy"]))


# Strategies. Values are drawn from small pools so that generated rules and events meet often
# enough for matches to happen, with arbitrary text mixed in for the totality properties.

TITLES = ["Board meeting", "Weekly sync", "Support call", "", "board"]
PRESETS = ["host", "board", "guest", "viewer"]
PATTERNS = ["^Board", "sync$", "(?i)support", "a|b", ".*"]
GLOBS = ["Board*", "*sync", "?eekly*", "[BS]*"]

_text_values = st.one_of(st.sampled_from(TITLES + PRESETS), st.text(max_size=12))
_texts = st.one_of(st.none(), _text_values)
_counts = st.integers(min_value=0, max_value=12)

_TEXT_FIELDS = [
    "meeting.id",
    "meeting.title",
    "participant.custom_participant_id",
    "participant.preset",
    "session.recording",
]
_NUMBER_FIELDS = ["session.participants", "session.distinct_participants"]


def _text_condition() -> st.SearchStrategy[Any]:
    pool = st.sampled_from(TITLES + PRESETS)
    operator_maps = st.one_of(
        st.builds(lambda v: {"equals": v}, pool),
        st.builds(lambda v: {"not_equals": v}, pool),
        st.builds(lambda v: {"in": v}, st.lists(pool, max_size=3)),
        st.builds(lambda v: {"not_in": v}, st.lists(pool, max_size=3)),
        st.builds(lambda v: {"regex": v}, st.sampled_from(PATTERNS)),
        st.builds(lambda v: {"glob": v}, st.sampled_from(GLOBS)),
        st.builds(lambda v: {"contains": v}, st.sampled_from(["oa", "y", ""])),
        st.builds(lambda v: {"exists": v}, st.booleans()),
    )
    return st.one_of(pool, operator_maps)


def _number_condition() -> st.SearchStrategy[Any]:
    operators = st.sampled_from(["equals", "not_equals", "gt", "gte", "lt", "lte"])
    single = st.builds(lambda op, v: {op: v}, operators, _counts)
    members = st.builds(
        lambda op, v: {op: v}, st.sampled_from(["in", "not_in"]), st.lists(_counts, max_size=3)
    )
    return st.one_of(_counts, single, members)


_times = st.builds(
    lambda days, hours, zone: {**days, **hours, "timezone": zone},
    st.one_of(
        st.just({"days": ["mon", "tue", "wed", "thu", "fri"]}),
        st.just({"days": ["sat", "sun"]}),
    ),
    st.sampled_from(
        [{}, {"from": "08:00", "to": "18:00"}, {"from": "22:00", "to": "06:00"}, {"to": "12:00"}]
    ),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
)


def _leaves() -> st.SearchStrategy[dict[str, Any]]:
    text = st.builds(lambda f, c: {f: c}, st.sampled_from(_TEXT_FIELDS), _text_condition())
    number = st.builds(lambda f, c: {f: c}, st.sampled_from(_NUMBER_FIELDS), _number_condition())
    time = st.builds(lambda t: {"time": t}, _times)
    return st.one_of(text, number, time)


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


whens: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.builds(_merge, st.lists(_leaves(), max_size=3)),
    lambda inner: st.one_of(
        st.builds(
            lambda w, options: {**w, "any": options}, inner, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(lambda w, negated: {**w, "not": negated}, inner, inner),
    ),
    max_leaves=6,
)

_recordings = st.sampled_from(
    [
        {},
        {"file_name_prefix": "rec-{meeting.id}-{date}"},
        {
            "max_seconds": 600,
            "file_name_prefix": "{meeting.title}/{participant.custom_participant_id}",
        },
        {"allow_multiple_recordings": True},
    ]
)


@st.composite
def raw_rules(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A valid raw rule called `name`, with a random trigger, conditions and action."""
    action = draw(st.sampled_from(["start_recording", "stop_recording", "skip"]))
    raw: dict[str, Any] = {
        "name": name,
        "on": draw(st.sampled_from([JOINED, LEFT, STARTED])),
        "action": action,
    }
    if draw(st.booleans()):
        raw["when"] = draw(whens)
    if action == "start_recording":
        raw["recording"] = draw(_recordings)
    return raw


@st.composite
def raw_policies(draw: st.DrawFn, max_rules: int = 5) -> dict[str, Any]:
    """A valid raw policy section with uniquely named rules."""
    count = draw(st.integers(min_value=0, max_value=max_rules))
    rules = [draw(raw_rules(f"rule-{index}")) for index in range(count)]
    return {"mode": draw(st.sampled_from(["enforce", "shadow"])), "rules": rules}


_moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-7))]),
)


@st.composite
def policy_inputs(
    draw: st.DrawFn, moments: st.SearchStrategy[dt.datetime] = _moments
) -> PolicyInput:
    """An event's facts, from the common pools or arbitrary text, at any time."""
    participant = draw(
        st.one_of(
            st.none(),
            st.builds(
                ParticipantFacts,
                peer_id=_texts,
                custom_participant_id=_texts,
                display_name=_texts,
                preset=st.one_of(st.none(), st.sampled_from(PRESETS), st.text(max_size=5)),
            ),
        )
    )
    return PolicyInput(
        trigger=draw(st.sampled_from([JOINED, LEFT, STARTED, "meeting.ended"])),
        meeting=MeetingFacts(
            id=draw(st.one_of(st.sampled_from(["m-1", "Board meeting"]), st.text(max_size=8))),
            title=draw(_texts),
            session_id=draw(_texts),
            organization_id=draw(_texts),
        ),
        participant=participant,
        participants=draw(_counts),
        distinct_participants=draw(_counts),
        recording=draw(st.sampled_from(["none", "RECORDING", "PAUSED", "INVOKED"])),
        event_time=draw(moments),
    )


def cases(table: list[tuple[Any, ...]]) -> list[Any]:
    """`pytest.param`s of a compact table whose rows start with their id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]
