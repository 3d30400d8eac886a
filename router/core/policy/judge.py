"""Judging a compiled `when` tree against the facts of one event, with a readable reason for
every check so that each decision can say why it was taken.

Missing values (a field the event does not carry, `None` here) fail every operator except
three: `not_equals` and `not_in` hold on a missing value (it is not equal to anything), and
`exists` is judged on presence itself. Nothing is short-circuited: every check of every rule is
judged, so that a trace shows all the reasons a rule did not match, not only the first one.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase

from router.core.policy.language import (
    HOLD_ON_MISSING,
    AllOf,
    AnyOf,
    Check,
    Node,
    Operand,
    TimeWindow,
)
from router.core.policy.timewindow import judge_time

Facts = Mapping[str, str | int | float | None]

_SYMBOLS = {"equals": "==", "not_equals": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_SHOWN_CHARS = 80
_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_EQUALITY = frozenset({"equals", "not_equals", "in", "not_in"})


def judge(
    tree: AllOf, facts: Facts, moment: dt.datetime
) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """Whether every condition of `tree` holds for `facts` at `moment`; one reason per check
    (nested ones prefixed with their path, such as `any[1]:` or `not:`); and the reasons of
    the top-level conditions that did not hold, which are why the tree did not."""
    reasons: list[str] = []
    unmet: list[str] = []
    for term in tree.terms:
        first = len(reasons)  # (a condition's own reason comes before its nested ones)
        if not _node(term, facts, moment, "", reasons):
            unmet.append(reasons[first])
    return not unmet, tuple(reasons), tuple(unmet)


def holds(op: str, operand: Operand, value: object) -> bool:
    """Whether operator `op` with `operand` holds for `value`; never raises."""
    if op == "exists":
        return (value is not None) is operand
    if value is None:
        return op in HOLD_ON_MISSING
    if op in _EQUALITY:
        return _equality(op, operand, value)
    if isinstance(value, str):
        return _text(op, operand, value)
    return _compare(op, operand, value)


def describe_check(check: Check, value: object, held: bool) -> str:
    """One line of a trace, e.g. `session.participants 1 >= 2: no`."""
    shown = "(missing)" if value is None else _show(value)
    return f"{check.field} {shown} {_phrase(check)}: {_verdict(held)}"


def _all_of(node: AllOf, facts: Facts, moment: dt.datetime, path: str, out: list[str]) -> bool:
    # A list, not a generator inside all(): every term must be judged for the trace.
    results = [_node(term, facts, moment, path, out) for term in node.terms]
    return all(results)


def _node(node: Node, facts: Facts, moment: dt.datetime, path: str, out: list[str]) -> bool:
    prefix = f"{path}: " if path else ""
    if isinstance(node, Check):
        value = facts.get(node.field)
        held = holds(node.op, node.operand, value)
        out.append(prefix + describe_check(node, value, held))
        return held
    if isinstance(node, TimeWindow):
        held, reason = judge_time(node, moment)
        out.append(prefix + reason)
        return held
    if isinstance(node, AnyOf):
        here = _child(path, "any")
        summary = len(out)
        results = [
            _all_of(option, facts, moment, f"{here}[{index}]", out)
            for index, option in enumerate(node.options)
        ]
        held = any(results)
        count = f"{sum(results)} of {len(results)} held"
        out.insert(summary, f"{here}: {count}: {_verdict(held)}")
        return held
    here = _child(path, "not")
    summary = len(out)
    inner = _all_of(node.inner, facts, moment, here, out)
    state = "held" if inner else "did not hold"
    out.insert(summary, f"{here}: nested conditions {state}: {_verdict(not inner)}")
    return not inner


def _equality(op: str, operand: Operand, value: object) -> bool:
    if op in ("in", "not_in"):
        found = isinstance(operand, tuple) and value in operand
        return found if op == "in" else not found
    return (value == operand) if op == "equals" else (value != operand)


def _text(op: str, operand: Operand, value: str) -> bool:
    if op == "regex":
        return isinstance(operand, re.Pattern) and operand.search(value) is not None
    if op == "glob":
        return isinstance(operand, str) and fnmatchcase(value, operand)
    return op == "contains" and isinstance(operand, str) and operand in value


def _compare(op: str, operand: Operand, value: object) -> bool:
    # bool is an int to Python, but never a count here.
    if isinstance(value, bool) or isinstance(operand, bool):
        return False
    if not isinstance(value, int | float) or not isinstance(operand, int | float):
        return False
    compare = _ORDER.get(op)
    return compare is not None and bool(compare(value, operand))


def _phrase(check: Check) -> str:
    operand = check.operand
    if check.op == "exists":
        return "exists" if operand else "is missing"
    if isinstance(operand, re.Pattern):
        return f"matches regex {_show(operand.pattern)}"
    if isinstance(operand, tuple):
        return f"{check.op.replace('_', ' ')} {_show(list(operand))}"
    if check.op == "glob":
        return f"matches glob {_show(operand)}"
    if check.op == "contains":
        return f"contains {_show(operand)}"
    return f"{_SYMBOLS.get(check.op, check.op)} {_show(operand)}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _verdict(held: bool) -> str:
    return "yes" if held else "no"
