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
    aliased: set[Path] = field(default_factory=set)  # paths whose value is an alias (*name)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def told(self, path: Path) -> bool:
        """Whether the value at `path` is written there (not from ${...} or an alias), so that
        an error may repeat it."""
        return path not in self.expanded and not any(
            path[:end] in self.aliased for end in range(len(path) + 1)
        )

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
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    doc = YamlDocument(data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _build(node, (), doc, env, loader.aliased)
    return doc


class _Loader(yaml.SafeLoader):
    """The safe loader, noting which nodes are used through an alias (`*name`): such a node
    may hold a secret anchored elsewhere, so it is never shown as a key."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliased: set[int] = set()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        if alias and node is not None:
            self.aliased.add(id(node))
        return node


def _build(
    node: yaml.Node, path: Path, doc: YamlDocument, env: Mapping[str, str], aliased: set[int]
) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in aliased:
        doc.aliased.add(path)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if id(key_node) in aliased:
                doc.lines.setdefault(path, key_node.start_mark.line + 1)
                doc.problems.append((path, "a key may not be an alias (*name)"))
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = (*path, key)
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, doc, env, aliased)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, doc, env, aliased))
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
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError):
        # PyYAML's messages quote the value (`invalid literal for int(): 'sk-...'`): it may
        # be a secret, so the problem is told without it.
        doc.problems.append((path, "the value cannot be read as its YAML tag (!!...) says"))
        return None


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


def unquoted(problem: str) -> str:
    """A problem without the text it quotes: PyYAML's `found undefined alias 'x'` quotes what
    follows a `*`, which may be a literal secret that happens to begin with one. Quoted single
    characters (`found character '\\t'`) stay."""
    return re.sub(r"'[^']{3,}'", "(text not shown)", problem)


def _resolve_tag(value: str) -> str:
    """The tag YAML gives an unquoted scalar with this text (int, bool, null, str, ...)."""
    tag: str = yaml.SafeLoader("").resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, value, (True, False)
    )
    return tag
