"""The text `router explain` prints for an `Evaluation`: the decision first, then every rule
in order with each of its checks, so that an operator can see why a rule did or did not match
without reading the policy code; and the same judgements, one line per rule, as the
`explanation` every decision carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from router.core.policy.evaluate import Evaluation, RuleTrace

_INDENT = "      "
_NO_CONDITIONS = "no conditions: matches every event"


@dataclass(frozen=True)
class RuleJudgement:
    """One rule's line of a decision's explanation (SPEC 9.1)."""

    rule: str
    matched: bool
    why: str


def explanation(ev: Evaluation) -> tuple[RuleJudgement, ...]:
    """The rules evaluated for the event, in policy order, up to and including the deciding
    one, each with the judgement `format_evaluation` shows for it on one line: the checks
    that did not hold for a rule that did not match, every check for the one that did."""
    judged = []
    for trace in ev.trace:
        if not trace.applies:
            continue  # (written for another event: not evaluated)
        if trace.matched:
            judged.append(
                RuleJudgement(trace.rule, True, "; ".join(trace.reasons) or _NO_CONDITIONS)
            )
            break  # the first match decides; later rules are not part of the decision
        judged.append(RuleJudgement(trace.rule, False, "; ".join(trace.unmet)))
    return tuple(judged)


def format_evaluation(ev: Evaluation) -> str:
    """A multi-line, human-readable account of `ev` (no trailing newline)."""
    lines = [f"event: {ev.trigger}", f"decision: {_decision(ev)}"]
    if ev.recording:
        options = json.dumps(ev.recording, sort_keys=True, ensure_ascii=False, default=str)
        lines.append(f"recording options: {options}")
    if ev.allow_multiple:
        lines.append("allow_multiple_recordings: the one-recording-per-session guarantee is lifted")
    if not ev.trace:
        lines.append("rules: none")
        return "\n".join(lines)
    lines.append("rules, in order (the first that matches decides):")
    for number, trace in enumerate(ev.trace, start=1):
        lines.append(f"  {number}. {trace.rule}: {_status(trace, ev)}")
        if trace.applies:
            reasons = trace.reasons or (_NO_CONDITIONS,)
            lines.extend(f"{_INDENT}{reason}" for reason in reasons)
    return "\n".join(lines)


def _decision(ev: Evaluation) -> str:
    if ev.outcome_hint == "match":
        return f"{ev.action} by rule '{ev.rule}'"
    if ev.outcome_hint == "skipped":
        return f"none: rule '{ev.rule}' matched and skips this event"
    if ev.outcome_hint == "no_match":
        return "none: no rule matched (no_match)"
    return f"none: no rule is written for {ev.trigger}, so no decision is made"


def _status(trace: RuleTrace, ev: Evaluation) -> str:
    if not trace.applies:
        reason = trace.reasons[0] if trace.reasons else "written for another event"
        return f"not for this event ({reason})"
    if not trace.matched:
        return "did not match"
    if trace.rule == ev.rule:
        return "matched, decides"
    return "matched, but an earlier rule decided"
