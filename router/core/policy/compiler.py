"""Compilation of a raw `when` mapping (as read from YAML) into the frozen tree of
`language`, collecting every problem with the path of the key that causes it.

Problems are collected rather than raised so that `check-config` can list all of them at once,
each on the line of its own key. Operands are typed against the field: a count takes numbers,
the other fields take strings, and an unquoted YAML number where text is expected is refused
with a hint instead of quietly never matching.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from router.core.policy.language import (
    ALWAYS,
    ANY,
    NOT,
    NUMBER_FIELDS,
    NUMBER_ONLY_OPERATORS,
    OPERATORS,
    TEXT_FIELDS,
    TEXT_ONLY_OPERATORS,
    TIME_FIELD,
    AllOf,
    AnyOf,
    Check,
    Loc,
    Node,
    Not,
    Operand,
    Problem,
    Scalar,
)
from router.core.policy.timewindow import compile_time


def compile_when(raw: object, loc: Loc = ()) -> tuple[AllOf, list[Problem]]:
    """The compiled tree of a `when` mapping and the problems found in it (empty when valid).

    `None` (an omitted or empty `when:`) compiles to a tree that always holds.
    """
    problems: list[Problem] = []
    if raw is None:
        return ALWAYS, problems
    return _all_of(raw, loc, problems), problems


def _all_of(raw: object, loc: Loc, problems: list[Problem]) -> AllOf:
    if not isinstance(raw, Mapping):
        problems.append(Problem(loc, "expected a map of conditions (field: condition)", raw))
        return ALWAYS
    terms: list[Node] = []
    for key, value in raw.items():
        here = (*loc, key if isinstance(key, str) else str(key))
        if key == ANY:
            terms.extend(_any_of(value, here, problems))
        elif key == NOT:
            terms.append(Not(_all_of(value, here, problems)))
        elif key == TIME_FIELD:
            window = compile_time(value, here, problems)
            if window is not None:
                terms.append(window)
        elif key in TEXT_FIELDS or key in NUMBER_FIELDS:
            terms.extend(_condition(key, value, here, problems))
        else:
            problems.append(Problem(here, f"unknown field '{key}'", value))
    return AllOf(tuple(terms))


def _any_of(raw: object, loc: Loc, problems: list[Problem]) -> list[Node]:
    if not isinstance(raw, list):
        problems.append(Problem(loc, "expected a list of condition maps", raw))
        return []
    if not raw:
        # An empty `any` can never hold; that is far more likely a slip than an intent.
        problems.append(Problem(loc, "expected at least one condition map", raw))
        return []
    options = tuple(_all_of(item, (*loc, index), problems) for index, item in enumerate(raw))
    return [AnyOf(options)]


def _condition(field: str, raw: object, loc: Loc, problems: list[Problem]) -> list[Check]:
    """A scalar (equality) or a map of operators, all of which must hold."""
    if isinstance(raw, Mapping):
        if not raw:
            problems.append(Problem(loc, "expected at least one operator", raw))
            return []
        checks: list[Check] = []
        for op, operand in raw.items():
            if op not in OPERATORS:
                problems.append(Problem(loc, f"unknown operator '{op}'", raw))
                continue
            check = _operator(field, op, operand, (*loc, op), problems)
            if check is not None:
                checks.append(check)
        return checks
    if raw is None:
        problems.append(
            Problem(loc, "expected a value or a map of operators (for a missing value: exists)")
        )
        return []
    if isinstance(raw, list):
        problems.append(Problem(loc, "a list is not a condition; use {in: [...]}", raw))
        return []
    value = _scalar(field, raw, loc, problems)
    return [] if value is None else [Check(field, "equals", value)]


def _operator(
    field: str, op: str, operand: object, loc: Loc, problems: list[Problem]
) -> Check | None:
    refusal = _refusal(field, op, operand)
    if refusal is not None:
        problems.append(Problem(loc, refusal, operand))
        return None
    typed: Operand | None
    if op == "exists":
        typed = bool(operand)
    elif op in ("in", "not_in"):
        typed = _members(field, operand, loc, problems)
    elif op == "regex":
        typed = _pattern(field, operand, loc, problems)
    else:
        typed = _scalar(field, operand, loc, problems)
    return None if typed is None else Check(field, op, typed)


def _refusal(field: str, op: str, operand: object) -> str | None:
    """Why `op` cannot be used on `field` with this kind of operand, if it cannot."""
    number = field in NUMBER_FIELDS
    if op == "exists" and not isinstance(operand, bool):
        return "expected true or false"
    if op in TEXT_ONLY_OPERATORS and number:
        return f"'{op}' applies to text; {field} is a number"
    if op in NUMBER_ONLY_OPERATORS and not number:
        return f"'{op}' compares numbers; {field} is text"
    if op in ("in", "not_in") and not isinstance(operand, list):
        return "expected a list"
    return None


def _members(field: str, operand: object, loc: Loc, problems: list[Problem]) -> Operand | None:
    assert isinstance(operand, list)  # checked by _refusal
    items = [_scalar(field, item, (*loc, i), problems) for i, item in enumerate(operand)]
    typed = tuple(item for item in items if item is not None)
    return typed if len(typed) == len(items) else None


def _pattern(field: str, operand: object, loc: Loc, problems: list[Problem]) -> Operand | None:
    text = _scalar(field, operand, loc, problems)
    if not isinstance(text, str):
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        problems.append(Problem(loc, f"invalid regex {text!r}: {exc}", text))
        return None


def _scalar(field: str, value: object, loc: Loc, problems: list[Problem]) -> Scalar | None:
    """`value` when it has the field's type, else `None` and a problem."""
    if field in NUMBER_FIELDS:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return value
            problems.append(Problem(loc, "expected a finite number", value))
            return None
        problems.append(Problem(loc, f"expected a number, got {_kind(value)}", value))
        return None
    if isinstance(value, str):
        return value
    hint = " (quote it in YAML)" if isinstance(value, bool | int | float) else ""
    problems.append(Problem(loc, f"expected text, got {_kind(value)}{hint}", value))
    return None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float | str):
        return f"the {'text' if isinstance(value, str) else 'number'} {value!r}"
    names = {type(None): "null", dict: "a map", list: "a list"}
    return names.get(type(value), type(value).__name__)
