"""Properties of the policy over generated policies and events: evaluation is total and
deterministic, a rule that can never match changes no decision wherever it is inserted,
`not` and `any` mean what they say, and the version ignores layout."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.policy import (
    Evaluation,
    Policy,
    PolicyConfig,
    PolicyInput,
    format_evaluation,
    policy_version,
)
from tests.plugins.policy import policy_inputs, raw_policies, whens

_extreme_moments = st.datetimes(
    timezones=st.sampled_from(
        [None, dt.UTC, dt.timezone(dt.timedelta(hours=23, minutes=59)), dt.timezone.min]
    )
)


def _compile(raw: dict[str, Any]) -> Policy:
    return Policy.from_config(PolicyConfig.model_validate(raw))


def _decision(evaluation: Evaluation) -> tuple[Any, ...]:
    return (evaluation.rule, evaluation.action, dict(evaluation.recording))


@settings(max_examples=300)
@given(raw=raw_policies(), inp=st.one_of(policy_inputs(), policy_inputs(_extreme_moments)))
def test_evaluation_is_total_and_deterministic(raw: dict[str, Any], inp: PolicyInput) -> None:
    policy = _compile(raw)
    first = policy.evaluate(inp)
    assert policy.evaluate(inp) == first
    assert _compile(raw).evaluate(inp) == first
    assert format_evaluation(first) == format_evaluation(policy.evaluate(inp))
    assert len(first.trace) == len(raw["rules"])
    written = [rule for rule in raw["rules"] if rule["on"] == inp.trigger]
    assert policy.applies_to(inp.trigger) is bool(written)
    if not written:
        assert (first.action, first.outcome_hint) == (None, "not_applicable")
        return
    matched = [trace.rule for trace in first.trace if trace.matched]
    assert first.rule == (matched[0] if matched else None)
    deciding = next((rule for rule in written if rule["name"] == first.rule), None)
    expected = {
        None: ("none", "no_match"),
        "skip": ("none", "skipped"),
        "start_recording": ("start_recording", "match"),
        "stop_recording": ("stop_recording", "match"),
    }[deciding and deciding["action"]]
    assert (first.action, first.outcome_hint) == expected


NEVER = [
    {"meeting.id": {"in": []}},
    {"not": {}},
    {"session.participants": {"lt": 0}},
    {"any": [{"participant.preset": {"in": []}}]},
]


@settings(max_examples=300)
@given(
    raw=raw_policies(),
    inp=policy_inputs(),
    data=st.data(),
)
def test_a_rule_that_never_matches_changes_no_decision(
    raw: dict[str, Any], inp: PolicyInput, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(raw["rules"])))
    inert = {
        "name": "never",
        "on": data.draw(st.sampled_from(["meeting.participantJoined", "meeting.participantLeft"])),
        "when": data.draw(st.sampled_from(NEVER)),
        "action": data.draw(st.sampled_from(["start_recording", "stop_recording", "skip"])),
    }
    rules = list(raw["rules"])
    rules.insert(position, inert)
    before = _compile(raw).evaluate(inp)
    after = _compile({**raw, "rules": rules}).evaluate(inp)
    assert after.rule != "never"
    if before.action is None and after.action is not None:
        # The inert rule is the first one written for this trigger: the event now gets a
        # `no_match` decision instead of none, which is the only change allowed.
        assert (before.rule, after.rule, after.action) == (None, None, "none")
    else:
        assert _decision(after) == _decision(before)
        assert after.outcome_hint == before.outcome_hint


@settings(max_examples=200)
@given(when=whens, inp=policy_inputs())
def test_not_negates_and_a_single_any_is_the_same(when: dict[str, Any], inp: PolicyInput) -> None:
    on = inp.trigger if inp.trigger != "meeting.ended" else "meeting.started"
    inp = dataclasses.replace(inp, trigger=on)

    def matched(condition: dict[str, Any]) -> bool:
        rule = {"name": "r", "on": on, "when": condition, "action": "skip"}
        return _compile({"rules": [rule]}).evaluate(inp).outcome_hint == "skipped"

    plain = matched(when)
    assert matched({"not": when}) is not plain
    assert matched({"any": [when]}) is plain
    assert matched({"any": [when, {"not": {}}]}) is plain


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@settings(max_examples=200)
@given(raw=raw_policies(), seed=st.integers())
def test_version_ignores_key_order(raw: dict[str, Any], seed: int) -> None:
    version = policy_version(PolicyConfig.model_validate(raw))
    shuffled = _shuffled(raw, random.Random(seed))
    assert policy_version(PolicyConfig.model_validate(shuffled)) == version
    assert len(version) == 12
    assert int(version, 16) >= 0
