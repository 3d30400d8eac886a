"""Whether a record schema can replace the last published one without breaking a consumer.

A consumer may validate records with the published schema, or replay the log's old records
with the new one. So a new schema is refused when it:

- removes a field (a rename is a removal and an addition), or a record type;
- narrows a field's type (a JSON type it allowed is no longer allowed);
- makes a field that was optional required;
- removes a value from an enumeration (`enum`, or `const` in an `anyOf`), or restricts a field
  that took any value to an enumeration;
- closes an object that was open (`additionalProperties: false`).

Additions are allowed: a new field (the router writes every field it has, so new fields are
listed as required; records from before simply lack them), a new record type, a wider type, a
new enumeration value. Pure functions over parsed JSON Schemas; `router.schemagen` reads the
files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = Mapping[str, Any]
ALL_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def breaking_changes(published: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """Every breaking change from the published schemas to the current ones, by record type."""
    problems: list[str] = []
    for record_type, old in sorted(published.items()):
        new = current.get(record_type)
        if new is None:
            problems.append(f"{record_type}: record type removed")
            continue
        problems.extend(f"{record_type}: {p}" for p in _compare(_Doc(old), old, _Doc(new), new, ""))
    return problems


class _Doc:
    """One schema document, to resolve its local `$ref`s."""

    def __init__(self, root: Schema) -> None:
        self._defs: Mapping[str, Schema] = root.get("$defs", {})

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while "$ref" in schema and seen < 32:
            schema = self._defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
            seen += 1
        return schema


def _compare(od: _Doc, old: Schema, nd: _Doc, new: Schema, path: str) -> list[str]:
    old, new = od.resolve(old), nd.resolve(new)
    where = path or "(record)"
    problems: list[str] = []
    lost = _types(od, old) - _types(nd, new)
    if "number" in lost and "integer" in _types(nd, new):
        lost -= {"integer"}
    if lost:
        problems.append(f"{where}: type narrowed, no longer {', '.join(sorted(lost))}")
    old_values, new_values = _values(od, old), _values(nd, new)
    if new_values is not None:
        if old_values is None:
            problems.append(f"{where}: restricted to the values {_show(new_values)}")
        elif removed := [v for v in old_values if v not in new_values]:
            problems.append(f"{where}: value {_show(removed)} removed")
    old_object, new_object = _object(od, old), _object(nd, new)
    if old_object is not None and new_object is not None:
        problems.extend(_compare_objects(od, old_object, nd, new_object, path))
    old_items, new_items = _items(od, old), _items(nd, new)
    if old_items is not None and new_items is not None:
        problems.extend(_compare(od, old_items, nd, new_items, f"{path}[]"))
    return problems


def _compare_objects(od: _Doc, old: Schema, nd: _Doc, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    where = path or "(record)"
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        problems.append(f"{where}: closed to new fields (additionalProperties: false)")
    old_props: Mapping[str, Schema] = old.get("properties", {})
    new_props: Mapping[str, Schema] = new.get("properties", {})
    old_required = set(old.get("required", ()))
    for name, old_field in old_props.items():
        field_path = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{field_path}: field removed (or renamed)")
            continue
        if name in new.get("required", ()) and name not in old_required:
            problems.append(f"{field_path}: optional field became required")
        problems.extend(_compare(od, old_field, nd, new_props[name], field_path))
    return problems


def _alternatives(doc: _Doc, schema: Schema) -> list[Schema]:
    schema = doc.resolve(schema)
    members = schema.get("anyOf") or schema.get("oneOf")
    if not members:
        return [schema]
    return [alt for member in members for alt in _alternatives(doc, member)]


def _types(doc: _Doc, schema: Schema) -> frozenset[str]:
    found: set[str] = set()
    for alt in _alternatives(doc, schema):
        declared = alt.get("type")
        if isinstance(declared, str):
            found.add(declared)
        elif isinstance(declared, list):
            found.update(declared)
        elif "const" in alt or "enum" in alt:
            found.update(_json_type(v) for v in ([alt["const"]] if "const" in alt else alt["enum"]))
        else:
            return ALL_TYPES  # (no constraint: anything)
    return frozenset(found)


def _values(doc: _Doc, schema: Schema) -> list[Any] | None:
    """The values an enumeration allows, or None when the field is not one."""
    values: list[Any] = []
    for alt in _alternatives(doc, schema):
        if "const" in alt:
            values.append(alt["const"])
        elif "enum" in alt:
            values.extend(alt["enum"])
        elif alt.get("type") != "null":
            return None
        else:
            values.append(None)
    return values


def _object(doc: _Doc, schema: Schema) -> Schema | None:
    for alt in _alternatives(doc, schema):
        if alt.get("type") == "object" or "properties" in alt:
            return alt
    return None


def _items(doc: _Doc, schema: Schema) -> Schema | None:
    for alt in _alternatives(doc, schema):
        if alt.get("type") == "array" and isinstance(alt.get("items"), Mapping):
            return dict(alt["items"])
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "string"


def _show(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)
