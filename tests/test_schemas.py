"""The committed JSON Schemas match the record models, and the AsyncAPI document describes every
topic, header and message type, with references that resolve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from router import schemagen
from router.core.records import RECORD_TYPES, TOPIC_RECORDS, record_type

ROUTER = Path(schemagen.__file__).parent
ASYNCAPI = ROUTER / "asyncapi.yaml"

TOPICS = {
    "webhooks": "rtk.webhooks",
    "recordings": "rtk.recordings",
    "meetings": "rtk.meetings",
    "decisions": "rtk.decisions",
    "dead_letter": "rtk.dead-letter",
    "state": "rtk.router-state",
}
CLOUDEVENT_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"}
WEBHOOK_HEADERS = {
    "rtk-signature",
    "rtk-uuid",
    "rtk-webhook-id",
    "router-source",
    "router-event",
    "router-received-at",
    "router-delivery-id",
}
# (never the signature: a signed copy could be posted back and accepted again)
DEAD_LETTER_HEADERS = (WEBHOOK_HEADERS - {"rtk-signature"}) | {
    "router-error",
    "router-stage",
    "router-redacted",
}


def test_committed_schemas_match_the_models() -> None:
    assert schemagen.out_of_date() == [], "run: python -m router.schemagen write"


@pytest.mark.parametrize("record_type", sorted(RECORD_TYPES))
def test_schema_files_are_valid_and_require_every_field(record_type: str) -> None:
    schema = json.loads((schemagen.SCHEMA_DIR / f"{record_type}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == record_type
    assert schema["properties"]["type"]["const"] == record_type
    assert set(schema["required"]) == set(schema["properties"])
    # Open for additions within version 1: nothing closes a record or a nested object.
    assert "additionalProperties" not in json.dumps(schema)


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 1
    assert schemagen.main(["write", "--dir", str(tmp_path)]) == 0
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()

    (tmp_path / "policy.decision.json").write_text("{}\n")
    (tmp_path / "meeting.started.json").unlink()
    (tmp_path / "retired.type.json").write_text("{}\n")
    assert sorted(schemagen.out_of_date(tmp_path)) == [
        "meeting.started.json",
        "policy.decision.json",
        "retired.type.json",
    ]
    assert schemagen.main(["check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "policy.decision.json" in err
    assert "retired.type.json" in err

    assert sorted(schemagen.write(tmp_path)) == [
        "meeting.started.json",
        "policy.decision.json",
        "retired.type.json",
    ]
    assert schemagen.out_of_date(tmp_path) == []
    assert not (tmp_path / "retired.type.json").exists()


# ---- AsyncAPI


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI.read_text())
    assert isinstance(document, dict)
    return document


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_asyncapi_version_and_refs(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    for ref in refs(asyncapi):
        if ref.startswith("#/"):
            assert resolve(asyncapi, ref) is not None, ref
        else:
            assert (ROUTER / ref).is_file(), ref


def test_asyncapi_describes_every_topic(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]
    assert set(channels) == set(TOPICS)
    for name, address in TOPICS.items():
        assert channels[name]["address"] == address
        assert channels[name]["bindings"]["kafka"]["topic"] == address
    assert channels["state"]["x-internal"] is True
    assert channels["webhooks"]["x-internal"] is True
    assert channels["state"]["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == [
        "compact"
    ]
    used = {op["channel"]["$ref"] for op in asyncapi["operations"].values()}
    assert used == {f"#/channels/{name}" for name in TOPICS}


@pytest.mark.parametrize("topic", sorted(TOPIC_RECORDS))
def test_asyncapi_describes_every_record_type(asyncapi: dict[str, Any], topic: str) -> None:
    channel_messages = asyncapi["channels"][topic]["messages"]
    for model in TOPIC_RECORDS[topic]:
        name = record_type(model)
        message = resolve(asyncapi, channel_messages[name]["$ref"])
        assert message["name"] == name
        assert message["payload"]["$ref"] == f"schemas/{name}.json"
        assert (ROUTER / message["payload"]["$ref"]).is_file()
        traits = [resolve(asyncapi, trait["$ref"]) for trait in message["traits"]]
        headers = resolve(asyncapi, traits[0]["headers"]["$ref"])
        assert set(headers["properties"]) == CLOUDEVENT_HEADERS
        assert set(headers["required"]) == CLOUDEVENT_HEADERS
        key = resolve(asyncapi, traits[1]["bindings"]["kafka"]["key"]["$ref"])
        assert key["type"] == "string"
    assert len(channel_messages) == len(TOPIC_RECORDS[topic])


def _header_names(asyncapi: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return _header_names(asyncapi, resolve(asyncapi, schema["$ref"]))
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _header_names(asyncapi, part)
    return names


@pytest.mark.parametrize(
    ("message", "headers"),
    [
        pytest.param("webhook", WEBHOOK_HEADERS, id="webhooks"),
        pytest.param("dead_letter", DEAD_LETTER_HEADERS, id="dead-letter"),
    ],
)
def test_asyncapi_raw_message_headers(
    asyncapi: dict[str, Any], message: str, headers: set[str]
) -> None:
    described = asyncapi["components"]["messages"][message]
    assert _header_names(asyncapi, described["headers"]) == headers
