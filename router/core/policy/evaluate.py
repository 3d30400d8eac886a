"""The policy as the worker uses it: compiled once from `PolicyConfig`, then asked, for one
event's facts, which rule decides and why. Pure and total: no clock, no I/O, no exceptions.

Every rule written for the event's type is judged, even after the first match, so that the
trace can explain every rule; the first matching one decides. A trigger no rule is written
for gives an `Evaluation` with action `None`: no decision is published for it at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from router.core.policy.compiler import compile_when
from router.core.policy.judge import Facts, judge
from router.core.policy.language import AllOf, fields_read
from router.core.policy.model import ALLOW_MULTIPLE, PolicyConfig
from router.core.policy.templates import expand
from router.core.policy.timewindow import UTC_ZONE, local_time
from router.core.terms import Action

OutcomeHint = Literal["match", "skipped", "no_match", "not_applicable"]


@dataclass(frozen=True)
class MeetingFacts:
    """What the event says of the meeting."""

    id: str
    title: str | None = None
    session_id: str | None = None
    organization_id: str | None = None


@dataclass(frozen=True)
class ParticipantFacts:
    """What the event (and, for `preset`, the participants look-up) says of the participant."""

    peer_id: str | None = None
    custom_participant_id: str | None = None
    display_name: str | None = None
    preset: str | None = None


@dataclass(frozen=True)
class PolicyInput:
    """Everything a rule may read about one event, with the session as it is after the event."""

    trigger: str
    meeting: MeetingFacts
    participant: ParticipantFacts | None
    participants: int
    distinct_participants: int
    recording: str  # "none", or the status of the recording known to be active
    event_time: dt.datetime  # aware; a naive one is read as UTC


@dataclass(frozen=True)
class RuleTrace:
    """How one rule fared: is it written for this trigger, did it match, and why."""

    rule: str
    applies: bool
    matched: bool
    reasons: tuple[str, ...]
    unmet: tuple[str, ...] = ()  # the reasons of the conditions that did not hold


@dataclass(frozen=True)
class Evaluation:
    """The decision for one event; `action` is `None` when no rule is written for its type."""

    trigger: str
    rule: str | None
    action: Action | None
    outcome_hint: OutcomeHint
    recording: Mapping[str, Any]
    allow_multiple: bool
    trace: tuple[RuleTrace, ...]


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to judge."""

    name: str
    on: str
    when: AllOf
    action: str
    recording: Mapping[str, Any]
    reads: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """The compiled policy; build it with `Policy.from_config`."""

    mode: str
    version: str
    rules: tuple[CompiledRule, ...] = field(default=())

    @classmethod
    def from_config(cls, config: PolicyConfig) -> Policy:
        """Compile a validated configuration (which guarantees that compilation succeeds)."""
        rules = []
        for rule in config.rules:
            tree, problems = compile_when(rule.when)
            assert not problems, problems  # PolicyConfig validated the very same walk
            rules.append(
                CompiledRule(
                    name=rule.name,
                    on=rule.on,
                    when=tree,
                    action=rule.action,
                    recording=MappingProxyType(dict(rule.recording)),
                    reads=fields_read(tree),
                )
            )
        return cls(mode=config.mode, version=policy_version(config), rules=tuple(rules))

    def applies_to(self, trigger: str) -> bool:
        """Whether some rule is written for this event type (and so a decision is due)."""
        return any(rule.on == trigger for rule in self.rules)

    def reads_preset(self, trigger: str) -> bool:
        """Whether judging this event type needs `participant.preset`, which costs a look-up."""
        return any(rule.on == trigger and "participant.preset" in rule.reads for rule in self.rules)

    def evaluate(self, inp: PolicyInput) -> Evaluation:
        """The first matching rule's decision for `inp`, with a trace of every rule."""
        facts = _facts(inp)
        traces = []
        decided: CompiledRule | None = None
        for rule in self.rules:
            if rule.on != inp.trigger:
                traces.append(RuleTrace(rule.name, False, False, (f"written for {rule.on}",)))
                continue
            matched, reasons, unmet = judge(rule.when, facts, inp.event_time)
            traces.append(RuleTrace(rule.name, True, matched, reasons, unmet))
            if matched and decided is None:
                decided = rule
        trace = tuple(traces)
        if not any(t.applies for t in trace):
            return Evaluation(inp.trigger, None, None, "not_applicable", {}, False, trace)
        if decided is None:
            return Evaluation(inp.trigger, None, "none", "no_match", {}, False, trace)
        if decided.action == "skip":
            return Evaluation(inp.trigger, decided.name, "none", "skipped", {}, False, trace)
        action: Action = (
            "start_recording" if decided.action == "start_recording" else "stop_recording"
        )
        recording = expand(decided.recording, _template_values(inp))
        allow_multiple = decided.recording.get(ALLOW_MULTIPLE) is True
        return Evaluation(
            inp.trigger, decided.name, action, "match", recording, allow_multiple, trace
        )


def policy_version(config: PolicyConfig) -> str:
    """The first 12 hex digits of the SHA-256 of the policy as canonical JSON.

    Defaults are written out and keys sorted, so the version changes with what the policy
    means (its mode and its ordered rules), never with how the YAML happens to be laid out.
    """
    canonical = json.dumps(
        config.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _facts(inp: PolicyInput) -> Facts:
    participant = inp.participant or ParticipantFacts()
    return {
        "meeting.id": inp.meeting.id,
        "meeting.title": inp.meeting.title,
        "meeting.session_id": inp.meeting.session_id,
        "meeting.organization_id": inp.meeting.organization_id,
        "participant.peer_id": participant.peer_id,
        "participant.custom_participant_id": participant.custom_participant_id,
        "participant.display_name": participant.display_name,
        "participant.preset": participant.preset,
        "session.participants": inp.participants,
        "session.distinct_participants": inp.distinct_participants,
        "session.recording": inp.recording,
    }


def _template_values(inp: PolicyInput) -> dict[str, str]:
    utc = local_time(inp.event_time, UTC_ZONE)
    participant = inp.participant
    return {
        "meeting.id": inp.meeting.id,
        "meeting.title": inp.meeting.title or "",
        "participant.custom_participant_id": (
            participant.custom_participant_id or "" if participant is not None else ""
        ),
        "date": "" if utc is None else utc.date().isoformat(),
    }
