"""How the problems of a configuration file are told: one `FILE:LINE: dotted.path: message`
line each, for pydantic's errors as for the loader's, never repeating a value that came from
the environment or an alias (it may be a secret), and a warning for each secret written
literally in the file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from router.yamlsource import YamlDocument, unquoted

# Keys whose literal value in the file is a secret that belongs in the environment instead.
_SECRET_PATHS = (
    re.compile(r"^realtimekit\.api_token$"),
    re.compile(r"^apps\[\d+\]\.realtimekit\.api_token$"),
    re.compile(r"^sources\[\d+\]\.signature\.secrets\[\d+\]$"),
    re.compile(r"^kafka\.sasl_password$"),
    re.compile(r"^console\.password$"),
)


def dotted(path: tuple[str | int, ...]) -> str:
    """`("policy", "rules", 0, "when")` as `policy.rules[0].when`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(root)"


def describe(
    exc: ValidationError, doc: YamlDocument, shown: str, at: tuple[str | int, ...] = ()
) -> list[str]:
    """The problems of `exc`, raised validating the part of the file at `at`."""
    lines = []
    for error in exc.errors(include_url=False):
        path = _data_path(doc.data, (*at, *error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, str(error["ctx"]["discriminator"]).strip("'"))
        message = _message(error, told=doc.told(path))
        lines.append(f"{shown}:{doc.line_of(path)}: {dotted(path)}: {message}")
    return lines


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The path in the file for a pydantic `loc`, without union tags pydantic inserts."""
    path: list[str | int] = []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        found, child = _child(data, part)
        if found:
            data = child
        elif not last:
            continue  # a discriminator tag or validator name, not a key of the file
        else:
            data = None
        path.append(part)
    return tuple(path)


def _child(data: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(data, dict) and part in data:
        return True, data[part]
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return True, data[part]
    return False, None


def _message(error: Mapping[str, Any], *, told: bool) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        # A value from ${VAR} or an alias is not repeated: it may be a secret.
        value = f" '{ctx['tag']}'" if told else ""
        return f"unknown value{value} (expected {ctx['expected_tags']})"
    msg = str(error["msg"]).removeprefix("Value error, ")
    return msg if told else unquoted(msg)


def secret_warnings(doc: YamlDocument, shown: str) -> list[str]:
    found = []
    for path, line in doc.lines.items():
        name = dotted(path)
        if path in doc.expanded or not any(p.match(name) for p in _SECRET_PATHS):
            continue
        if _value_at(doc.data, path):
            found.append(
                f"{shown}:{line}: {name}: a literal secret; take it from the environment "
                "with ${VAR}"
            )
    return found


def _value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]  # the path was recorded while walking this very data
    return data


def line_order(problem: str) -> tuple[int, str]:
    match = re.match(r"^.*?:(\d+): ", problem)
    return (int(match.group(1)) if match else 0, problem)
