"""YAML read with the line of every key, `${VAR}` expansion, and `on:` kept as the string it is.

PyYAML's safe loader forgets where values came from, and YAML 1.1 reads an unquoted `on` key
as `true`. So the document is composed into nodes and built here by hand: keys are always
their literal text, plain scalars containing `${...}` are expanded from the environment and
then typed as YAML would type them, and every path gets the line it was written on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class YamlDocument:
    """The plain data of a YAML file with, for each path, the 1-based line it starts on."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    expanded: set[Path] = field(default_factory=set)  # paths whose value came from ${...}
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of the longest known prefix of `path` (a missing key reports its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def load_yaml(text: str, env: Mapping[str, str]) -> YamlDocument:
    """Compose `text`, expand variables from `env`, and record positions.

    Raises `yaml.YAMLError` for text that is not YAML; expansion problems are collected in
    `problems` so that they are reported with every other problem of the file.
    """
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    doc = YamlDocument(data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _build(node, (), doc, env)
    return doc


def _build(node: yaml.Node, path: Path, doc: YamlDocument, env: Mapping[str, str]) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = (*path, key)
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, doc, env)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, doc, env))
        return items
    assert isinstance(node, yaml.ScalarNode)
    value = str(node.value)
    if "${" in value:
        value = _expand(value, path, doc, env)
        doc.expanded.add(path)
        if node.style is None and value:  # plain scalar: type the expanded text as YAML would
            node = yaml.ScalarNode(
                tag=_resolve_tag(value),
                value=value,
                start_mark=node.start_mark,
            )
        else:
            return value
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _expand(value: str, path: Path, doc: YamlDocument, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        doc.problems.append((path, f"environment variable {name} is not set and has no default"))
        return ""

    return _VAR.sub(replace, value)


def _resolve_tag(value: str) -> str:
    """The tag YAML gives an unquoted scalar with this text (int, bool, null, str, ...)."""
    tag: str = yaml.SafeLoader("").resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, value, (True, False)
    )
    return tag
