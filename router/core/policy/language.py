"""The vocabulary of the rule language: the fields a `when` may read, the operators, and the
frozen nodes a `when` mapping compiles into.

A compiled `when` is a tree. `AllOf` is the mapping itself (every entry must hold), `AnyOf`
is `any: [...]`, `Not` is `not: {...}`, and the leaves are a `Check` (one operator on one
field) or a `TimeWindow`. Nodes carry everything evaluation needs, regexes already compiled,
so that judging an event is a walk with no parsing and nothing that can fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

Loc = tuple[str | int, ...]

TEXT_FIELDS = (
    "meeting.id",
    "meeting.title",
    "meeting.session_id",
    "meeting.organization_id",
    "participant.peer_id",
    "participant.custom_participant_id",
    "participant.display_name",
    "participant.preset",
    "session.recording",
)
NUMBER_FIELDS = ("session.participants", "session.distinct_participants")
TIME_FIELD = "time"
ANY = "any"
NOT = "not"
FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, TIME_FIELD)

OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "regex",
    "glob",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
)
# Ordering a title or matching a pattern against a count has no sensible meaning, so these are
# refused at load rather than silently never matching.
TEXT_ONLY_OPERATORS = frozenset({"regex", "glob", "contains"})
NUMBER_ONLY_OPERATORS = frozenset({"gt", "gte", "lt", "lte"})
# The operators that hold when the value is missing; `exists` is judged on presence itself.
HOLD_ON_MISSING = frozenset({"not_equals", "not_in"})

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Scalar = str | int | float | bool
Operand = Scalar | tuple[Scalar, ...] | re.Pattern[str]


@dataclass(frozen=True)
class Problem:
    """One configuration problem at `loc`, relative to the mapping being validated."""

    loc: Loc
    message: str
    value: object = None


@dataclass(frozen=True)
class Check:
    """One operator applied to one field; `operand` is already typed (a compiled regex for
    `regex`, a tuple for `in` and `not_in`)."""

    field: str
    op: str
    operand: Operand


@dataclass(frozen=True)
class TimeWindow:
    """`time:`: weekdays (Monday is 0) and a minute range `[start, end)` of the local day in
    `zone`; `start > end` wraps past midnight. `None` leaves that part open."""

    days: frozenset[int] | None
    start: int | None
    end: int | None
    zone: ZoneInfo


@dataclass(frozen=True)
class AllOf:
    """A `when` mapping: holds when every term holds (so the empty one always holds)."""

    terms: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """`any: [...]`: holds when at least one of the nested mappings holds."""

    options: tuple[AllOf, ...]


@dataclass(frozen=True)
class Not:
    """`not: {...}`: holds when the nested mapping does not."""

    inner: AllOf


Node = Check | TimeWindow | AnyOf | Not

ALWAYS = AllOf(())


def fields_read(node: Node | AllOf) -> frozenset[str]:
    """Every field the tree reads, through `any` and `not` as well."""
    if isinstance(node, Check):
        return frozenset({node.field})
    if isinstance(node, TimeWindow):
        return frozenset({TIME_FIELD})
    if isinstance(node, AnyOf):
        return frozenset().union(*(fields_read(option) for option in node.options))
    if isinstance(node, Not):
        return fields_read(node.inner)
    return frozenset().union(*(fields_read(term) for term in node.terms))
