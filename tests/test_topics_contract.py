"""What a downstream consumer is promised on the wire (SPEC 6): after a run that produces every
record type, every message of every topic, read with aiokafka and with confluent-kafka, is
keyed by its meeting, carries the headers of its topic (CloudEvents binary mode on the JSON
topics), and every JSON value is valid against the committed JSON Schema of its `ce_type`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from typing import Any

import jsonschema
import pytest

from router import schemagen
from router.core.delivery import meeting_key
from router.core.records import RECORD_TYPES, TOPIC_RECORDS, record_type
from router.core.signature import load_public_key, rsa_verify
from tests.confluent_reader import Message, read_topics
from tests.plugins.full_run import FullRun
from tests.plugins.topics import CLOUDEVENT_HEADERS, JSON_TOPICS, headers_of

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
WEBHOOK_HEADERS = {"router-source", "router-event", "router-received-at", "router-delivery-id"}
RTK_HEADERS = {"rtk-signature", "rtk-uuid", "rtk-webhook-id"}
DEAD_LETTER_HEADERS = {"router-error", "router-stage"}
DEAD_LETTER_STAGES = {"parse", "effects", "handler", "worker"}
SOURCES = {"realtimekit", "internal"}

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _rfc3339(value: object) -> bool:
    """Times on the topics: RFC 3339, UTC, milliseconds (`2026-06-03T10:30:00.000Z`)."""
    if not isinstance(value, str) or not RFC3339_MS.match(value):
        return False
    dt.datetime.fromisoformat(value)  # a real date, not just the right shape
    return True


def validator_for(ce_type: str) -> jsonschema.Draft202012Validator:
    path = schemagen.SCHEMA_DIR / schemagen.schema_file_name(ce_type)
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def check_cloudevent(headers: dict[str, str], value: dict[str, Any], key: bytes | None) -> None:
    """The CloudEvents binary-mode headers of one JSON message, and its key."""
    assert set(headers) == set(CLOUDEVENT_HEADERS), headers
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert headers["ce_type"] == value["type"]
    assert headers["ce_id"]
    assert headers["ce_source"] in {f"rtk-router/{s}" for s in SOURCES}
    assert RFC3339_MS.match(headers["ce_time"]), headers
    assert key == value["meeting_id"].encode()


async def test_every_json_message_carries_cloudevents_headers(full_run: FullRun) -> None:
    """ce_* on every message of recordings, meetings and decisions; `ce_id`, `ce_source` and
    `ce_time` name the webhook that caused the record, so replays can be recognised."""
    driver = full_run.driver
    webhooks = {
        headers_of(r)["router-delivery-id"]: headers_of(r)
        for r in await driver.messages("webhooks")
    }
    ce_ids: list[str] = []
    for topic in JSON_TOPICS:
        messages = await driver.messages(topic)
        assert messages, topic
        for message in messages:
            headers = headers_of(message)
            value = json.loads(message.value or b"{}")
            check_cloudevent(headers, value, message.key)
            assert value["type"] in {record_type(m) for m in TOPIC_RECORDS[topic]}, topic
            delivery_id, _, type_part = headers["ce_id"].rpartition("/")
            assert type_part == value["type"]
            cause = webhooks[delivery_id]
            assert headers["ce_source"] == "rtk-router/" + cause["router-source"]
            assert headers["ce_time"] == cause["router-received-at"]
            ce_ids.append(headers["ce_id"])
    assert len(ce_ids) == len(set(ce_ids)), "a ce_id names one record"


def check_webhook_headers(
    message: Message, public_key_pem: str, *, dead_letter: bool = False
) -> dict[str, str]:
    """The delivery headers of a raw webhook on the log (or on dead-letter, with why)."""
    headers = {k: v.decode() for k, v in message.headers}
    assert len(headers) == len(message.headers), "no header twice"
    expected = WEBHOOK_HEADERS | (DEAD_LETTER_HEADERS if dead_letter else set())
    if dead_letter and "router-redacted" in headers:  # secrets of the body masked
        expected.add("router-redacted")
    if headers["router-source"] == "realtimekit":
        expected |= RTK_HEADERS
    if dead_letter:  # (a signed copy could be posted back and accepted again)
        expected.discard("rtk-signature")
    assert set(headers) == expected, headers
    assert headers["router-source"] in SOURCES
    assert RFC3339_MS.match(headers["router-received-at"])
    payload = json.loads(message.value or b"{}")
    assert headers["router-event"] == payload["event"]
    key = meeting_key(payload)
    assert message.key == (key.encode() if key is not None else None)
    if headers["router-source"] == "realtimekit":
        assert headers["router-delivery-id"] == headers["rtk-uuid"]
    if "rtk-signature" in headers and "router-redacted" not in headers:
        # A consumer can check RTK's signature over the body exactly as logged.
        rsa_verify(
            [load_public_key(public_key_pem)], headers["rtk-signature"], message.value or b""
        )
    return headers


@pytest.mark.kafka
async def test_a_confluent_consumer_reads_every_topic_and_every_record_is_valid(
    full_run: FullRun,
) -> None:
    loop = full_run.loop
    names = {
        name: getattr(loop.kafka.topics, name)
        for name in ("webhooks", "recordings", "meetings", "decisions", "dead_letter")
    }
    found = await asyncio.to_thread(
        read_topics, loop.broker.bootstrap_servers, list(names.values())
    )
    by_name = {name: found[topic] for name, topic in names.items()}
    # The same messages aiokafka sees: nothing a librdkafka client cannot read.
    for name, messages in by_name.items():
        assert len(messages) == len(await full_run.driver.read(name)), name

    public_key = loop.emulator.state.public_key_pem()
    seen_types: set[str] = set()
    for name in JSON_TOPICS:
        for message in by_name[name]:
            value = json.loads(message.value or b"{}")
            headers = {k: v.decode() for k, v in message.headers}
            check_cloudevent(headers, value, message.key)
            errors = sorted(validator_for(headers["ce_type"]).iter_errors(value), key=str)
            assert not errors, (name, value, [e.message for e in errors])
            seen_types.add(headers["ce_type"])
    # `meeting.reconciled` comes of reconciliation alone, which this run leaves at its 60 s
    # interval; tests/test_reconcile.py holds its records to the same schemas and headers.
    made_by_reconciliation = {"meeting.reconciled"}
    assert seen_types == set(RECORD_TYPES) - made_by_reconciliation, "every webhook-made type"

    for message in by_name["webhooks"]:
        check_webhook_headers(message, public_key)
    webhook_ids = [m.header("router-delivery-id") for m in by_name["webhooks"]]
    assert by_name["dead_letter"], "the run dead-letters some events"
    for message in by_name["dead_letter"]:
        headers = check_webhook_headers(message, public_key, dead_letter=True)
        assert headers["router-stage"] in DEAD_LETTER_STAGES
        assert headers["router-error"]
        assert headers["router-delivery-id"] in webhook_ids
