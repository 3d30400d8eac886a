"""Templates in a rule's `recording` options: `{meeting.id}`, `{meeting.title}`,
`{participant.custom_participant_id}` and `{date}` in any string, however deeply nested.

`{{` and `}}` stand for literal braces. Placeholders are checked when the policy is loaded, so
an unknown one is a configuration error and expansion at decision time cannot fail; a value
the event does not carry expands to the empty string.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from router.core.policy.language import Loc, Problem
from router.core.redaction import CREDENTIAL_FIELDS

PLACEHOLDERS = ("meeting.id", "meeting.title", "participant.custom_participant_id", "date")

Piece = tuple[bool, str]  # (is a placeholder, literal text or placeholder name)


def template_problems(value: object, loc: Loc = ()) -> list[Problem]:
    """Every malformed template and non-text key in `value`, each at its own path."""
    problems: list[Problem] = []
    _walk(value, loc, problems)
    return problems


def expand(value: Any, values: Mapping[str, str]) -> Any:
    """A copy of `value` with the placeholders of every string replaced from `values`."""
    if isinstance(value, str):
        try:
            pieces = parse_template(value)
        except ValueError:
            return value  # refused at load; kept verbatim should an unchecked one arrive
        return "".join(values.get(text, "") if hole else text for hole, text in pieces)
    if isinstance(value, Mapping):
        return {key: expand(item, values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expand(item, values) for item in value]
    return value


@functools.lru_cache(maxsize=512)
def parse_template(text: str) -> tuple[Piece, ...]:
    """The literal runs and placeholders of `text`; `ValueError` says what is wrong.
    (Remembered: a rule's templates are expanded for every decision it makes.)"""
    pieces: list[Piece] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        pair = text[index : index + 2]
        if pair in ("{{", "}}"):
            literal.append(char)
            index += 2
            continue
        if char == "}":
            raise ValueError("a single '}' in a template; write '}}' for a literal brace")
        if char != "{":
            literal.append(char)
            index += 1
            continue
        close = text.find("}", index + 1)
        if close < 0:
            raise ValueError("an unclosed '{' in a template; write '{{' for a literal brace")
        name = text[index + 1 : close]
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder '{{{name}}}'; known: {known}")
        if literal:
            pieces.append((False, "".join(literal)))
            literal = []
        pieces.append((True, name))
        index = close + 1
    if literal:
        pieces.append((False, "".join(literal)))
    return tuple(pieces)


def _walk(value: object, loc: Loc, problems: list[Problem]) -> None:
    if isinstance(value, str):
        try:
            parse_template(value)
        except ValueError as exc:
            message = str(exc)
            if loc and loc[-1] in CREDENTIAL_FIELDS and message.startswith("unknown placeholder"):
                # The "placeholder" is a piece of a credential: say so without repeating it.
                known = ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
                message = f"an unknown placeholder (text in braces); known: {known}"
            problems.append(Problem(loc, message, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(loc, f"keys must be text, got {key!r}", value))
                continue
            _walk(item, (*loc, key), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*loc, index), problems)
