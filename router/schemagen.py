"""The JSON Schemas of the published records, generated from the models in `router.core.records`
and committed under `router/schemas/` so that consumers in any language can read them.

    python -m router.schemagen write    regenerate the files
    python -m router.schemagen check    exit 1, listing the files that differ from the models
                                        and every breaking change from the last published ones
    python -m router.schemagen publish  make the current schemas the published baseline

The last published schemas are kept under `router/schemas/published/`; `check` compares the
current ones with them (`router.schemacompat`), so that a change that would break a consumer
fails the build, while additions pass. The models are closed (`extra="forbid"`, so that nothing
outside the contract slips into a record), but the published schemas are open: a consumer
validating with them accepts the fields added later within version 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.core.records import RECORD_TYPES, Record
from router.schemacompat import breaking_changes

SCHEMA_DIR = Path(__file__).parent / "schemas"
PUBLISHED = "published"  # the last published schemas, under the schema directory
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file_name(record_type: str) -> str:
    """The file holding the schema of records of this `type` (e.g. `policy.decision.json`)."""
    return f"{record_type}.json"


def schema_for(record_type: str, model: type[Record]) -> dict[str, Any]:
    """The JSON Schema of one record type, as published (serialisation mode: every field is
    required, times are strings)."""
    generated = _open(model.model_json_schema(mode="serialization"))
    generated.pop("title", None)
    return {"$schema": DIALECT, "title": record_type, **generated}


def _open(schema: Any) -> Any:
    """The schema without `additionalProperties: false` anywhere: records may gain fields."""
    if isinstance(schema, dict):
        return {
            key: _open(value)
            for key, value in schema.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(schema, list):
        return [_open(value) for value in schema]
    return schema


def expected_files() -> dict[str, str]:
    """File name -> the text it must hold, for every published record type."""
    return {
        schema_file_name(record_type): json.dumps(
            schema_for(record_type, model), indent=2, ensure_ascii=False
        )
        + "\n"
        for record_type, model in RECORD_TYPES.items()
    }


def out_of_date(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the files that are missing, differ from the models, or belong to no model."""
    expected = expected_files()
    problems = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    if directory.is_dir():
        problems += sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Bring the directory in line with the models; the names of the files changed."""
    changed = out_of_date(directory)
    expected = expected_files()
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def _read(directory: Path) -> dict[str, Any]:
    """record type -> schema, for every schema file in `directory`."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def incompatible(directory: Path = SCHEMA_DIR) -> list[str]:
    """The breaking changes from the published schemas to the models' current ones."""
    current = {
        record_type: schema_for(record_type, model) for record_type, model in RECORD_TYPES.items()
    }
    return breaking_changes(_read(directory / PUBLISHED), current)


def publish(directory: Path = SCHEMA_DIR) -> list[str]:
    """Make the current schemas the published baseline; the names of the files written."""
    target = directory / PUBLISHED
    target.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for stale in target.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (target / name).write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m router.schemagen`."""
    parser = argparse.ArgumentParser(prog="python -m router.schemagen", description=__doc__)
    parser.add_argument("command", choices=("write", "check", "publish"))
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if args.command == "write":
        for name in write(args.dir):
            sys.stdout.write(f"wrote {args.dir / name}\n")
        return 0
    if args.command == "publish":
        for name in publish(args.dir):
            sys.stdout.write(f"published {args.dir / PUBLISHED / name}\n")
        return 0
    stale = out_of_date(args.dir)
    for name in stale:
        sys.stderr.write(f"out of date: {args.dir / name}\n")
    if stale:
        sys.stderr.write("run: python -m router.schemagen write\n")
    breaking = incompatible(args.dir)
    for problem in breaking:
        sys.stderr.write(f"breaking change: {problem}\n")
    if breaking:
        sys.stderr.write(
            "a breaking change needs a new record version; "
            "see the README, 'Publishing a schema change'\n"
        )
    return 1 if stale or breaking else 0


if __name__ == "__main__":
    sys.exit(main())
