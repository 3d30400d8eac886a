"""The webhook endpoint against the real embedded broker: every row of SPEC 5.1, both schemes."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from router.app import RUNTIME, create_app
from router.broker import EmbeddedBroker
from router.config import Settings
from router.core.signature import generate_key_pair, load_private_key
from tests.helpers import hmac_headers, joined_body, read_topic, rtk_headers, wait_ready
from tests.plugins.kafka import HMAC_SECRETS

RTK = "/webhooks/realtimekit"
INTERNAL = "/webhooks/internal"


@pytest.fixture
async def client(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> TestClient:
    # The broker is requested first so that it is stopped last, after the app has shut down.
    # The worker is not under test here; test_operations_endpoints runs the whole app.
    app = create_app(
        make_settings(), role="receiver", bootstrap=broker.bootstrap_servers, health_interval=0.2
    )
    return await aiohttp_client(app)


def settings_of(client: TestClient) -> Settings:
    return client.app[RUNTIME].settings


async def test_authentic_delivery_is_logged_byte_for_byte(
    client: TestClient, broker: EmbeddedBroker, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    # Unusual spacing and key order: the log must keep the bytes, not a re-serialisation.
    body = b'{ "meeting" : {"id": "m-42", "sessionId": "s"}, "event":"meeting.started" }'
    headers = rtk_headers(rtk_private_key, body, delivery_id="d-1", webhook_id="wh-9")
    response = await client.post(RTK, data=body, headers=headers)
    assert response.status == 200
    assert await response.json() == {"status": "accepted", "id": "d-1"}
    kafka = settings_of(client).kafka
    (record,) = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert record.value == body
    assert record.key == b"m-42"
    got = dict(record.headers)
    assert got["rtk-signature"] == headers["rtk-signature"].encode()
    assert got["rtk-uuid"] == b"d-1"
    assert got["rtk-webhook-id"] == b"wh-9"
    assert got["router-source"] == b"realtimekit"
    assert got["router-event"] == b"meeting.started"
    assert got["router-received-at"].endswith(b"Z")


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"event": "meeting.chatSynced", "meetingId": "m-flat"}, b"m-flat"),
        ({"event": "recording.statusUpdate", "recording": {"id": "r", "meetingId": "m-r"}}, b"m-r"),
        ({"event": "something.new", "x": 1}, None),
    ],
    ids=["meetingId", "recording.meetingId", "no-meeting"],
)
async def test_key_is_the_meeting_id(
    client: TestClient,
    broker: EmbeddedBroker,
    rtk_private_key: rsa.RSAPrivateKey,
    payload: dict[str, Any],
    key: bytes | None,
) -> None:
    body = json.dumps(payload).encode()
    response = await client.post(RTK, data=body, headers=rtk_headers(rtk_private_key, body))
    assert response.status == 200, await response.text()
    kafka = settings_of(client).kafka
    (record,) = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert record.key == key


async def test_duplicates_are_answered_but_not_logged_twice(
    client: TestClient, broker: EmbeddedBroker, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    body = joined_body()
    first = rtk_headers(rtk_private_key, body, delivery_id="same-uuid")
    assert (await (await client.post(RTK, data=body, headers=first)).json())["status"] == "accepted"
    again = await client.post(RTK, data=body, headers=first)
    assert (again.status, await again.json()) == (200, {"status": "duplicate"})
    # RTK may retry with a fresh uuid: same webhook id and body is the same delivery.
    fresh = rtk_headers(rtk_private_key, body, delivery_id="other-uuid")
    retried = await client.post(RTK, data=body, headers=fresh)
    assert (retried.status, await retried.json()) == (200, {"status": "duplicate"})
    kafka = settings_of(client).kafka
    records = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert len(records) == 1


async def test_copies_arriving_together_are_logged_once(
    client: TestClient, broker: EmbeddedBroker, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    # Ten copies at once, before the first is acknowledged: one appends, the others wait for
    # its outcome and are answered as duplicates (by uuid, or by content with a fresh uuid).
    body = joined_body()
    headers = [
        rtk_headers(rtk_private_key, body, delivery_id="together" if n % 2 else f"fresh-{n}")
        for n in range(10)
    ]
    answers = await asyncio.gather(*(client.post(RTK, data=body, headers=h) for h in headers))
    statuses = sorted([(a.status, (await a.json())["status"]) for a in answers])
    assert statuses == [(200, "accepted")] + [(200, "duplicate")] * 9
    kafka = settings_of(client).kafka
    records = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert len(records) == 1


def _bad_rsa(key: rsa.RSAPrivateKey, body: bytes) -> list[tuple[str, dict[str, str]]]:
    other = load_private_key(generate_key_pair()[0])
    good = rtk_headers(key, body)
    return [
        ("missing", {k: v for k, v in good.items() if k != "rtk-signature"}),
        ("empty", {**good, "rtk-signature": ""}),
        ("not-base64", {**good, "rtk-signature": "%%%not base64%%%"}),
        ("non-ascii", {**good, "rtk-signature": "é" * 10}),
        ("truncated", {**good, "rtk-signature": good["rtk-signature"][:40]}),
        ("other-key", rtk_headers(other, body)),
        ("other-body", rtk_headers(key, body + b" ")),
    ]


async def test_bad_rsa_signatures_get_401(
    client: TestClient, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    body = joined_body()
    for case, headers in _bad_rsa(rtk_private_key, body):
        response = await client.post(RTK, data=body, headers=headers)
        assert response.status == 401, case
        assert await response.json() == {"error": "invalid_signature"}, case


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b"not json at all", "not JSON"),
        (b'{"event": 7}', "no string 'event'"),
        (b'{"meeting": {}}', "no string 'event'"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[" * 100 + b"]" * 100, "nested deeper"),
    ],
    ids=["array", "garbage", "event-not-string", "no-event", "bad-utf8", "deep"],
)
async def test_authentic_but_unusable_payload_gets_400(
    client: TestClient, rtk_private_key: rsa.RSAPrivateKey, body: bytes, detail: str
) -> None:
    response = await client.post(RTK, data=body, headers=rtk_headers(rtk_private_key, body))
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "invalid_payload"
    assert detail in answer["detail"]


async def test_unknown_event_is_accepted(
    client: TestClient, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    body = b'{"event": "meeting.somethingNew", "meeting": {"id": "m"}}'
    response = await client.post(RTK, data=body, headers=rtk_headers(rtk_private_key, body))
    assert response.status == 200
    assert (await response.json())["status"] == "accepted"


def _padded(size: int) -> bytes:
    head = b'{"event":"meeting.started","meeting":{"id":"m"},"pad":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


async def test_body_limit_is_exact(client: TestClient, rtk_private_key: rsa.RSAPrivateKey) -> None:
    limit = settings_of(client).server.max_body_bytes
    at_limit = _padded(limit)
    assert len(at_limit) == limit
    ok = await client.post(RTK, data=at_limit, headers=rtk_headers(rtk_private_key, at_limit))
    assert ok.status == 200
    over = _padded(limit + 1)
    refused = await client.post(RTK, data=over, headers=rtk_headers(rtk_private_key, over))
    assert refused.status == 413


async def test_chunked_body_over_the_limit_gets_413(
    client: TestClient, rtk_private_key: rsa.RSAPrivateKey
) -> None:
    body = _padded(settings_of(client).server.max_body_bytes * 3)

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = rtk_headers(rtk_private_key, body)
    response = await client.post(RTK, data=chunks(), headers=headers)
    assert response.status == 413


async def test_hmac_source_with_rotation(client: TestClient, broker: EmbeddedBroker) -> None:
    body = joined_body(meeting_id="m-hmac")
    for secret in HMAC_SECRETS:  # newest and older both verify
        unique = body.replace(b"Weekly", secret.encode()[:6])
        response = await client.post(INTERNAL, data=unique, headers=hmac_headers(secret, unique))
        assert response.status == 200, secret
        answer = await response.json()
        assert answer["status"] == "accepted"
        uuid.UUID(answer["id"])  # generated for a source without rtk-uuid
    kafka = settings_of(client).kafka
    records = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=2)
    assert {dict(r.headers)["router-source"] for r in records} == {b"internal"}


@pytest.mark.parametrize("case", ["missing", "unknown-secret", "expired", "other-body", "garbage"])
async def test_bad_hmac_signatures_get_401(client: TestClient, case: str) -> None:
    body = joined_body()
    headers = {
        "missing": {"content-type": "application/json"},
        "unknown-secret": hmac_headers("not-configured", body),
        "expired": hmac_headers(HMAC_SECRETS[0], body, timestamp=1_000_000),
        "other-body": hmac_headers(HMAC_SECRETS[0], body + b" "),
        "garbage": {"x-router-signature": "a.b.c"},
    }[case]
    response = await client.post(INTERNAL, data=body, headers=headers)
    assert response.status == 401
    assert await response.json() == {"error": "invalid_signature"}


async def test_operations_endpoints(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    rtk_private_key: rsa.RSAPrivateKey,
) -> None:
    app = create_app(make_settings(), bootstrap=broker.bootstrap_servers, health_interval=0.2)
    client: TestClient = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    body = await wait_ready(client)
    assert body["checks"]["topics"] == "ok"
    assert body["checks"]["key:realtimekit"] == "ok"
    assert body["checks"]["worker"] == "ok"
    # No API token is configured here: the policy runs in shadow mode, and says so.
    assert body["mode"] == "shadow"
    assert "shadow" in body["warnings"][0]
    assert len(body["policy_version"]) == 12
    payload = joined_body()
    await client.post(RTK, data=payload, headers=rtk_headers(rtk_private_key, payload))
    await client.post(RTK, data=payload, headers={"rtk-signature": "bad"})
    text = await (await client.get("/metrics")).text()
    for name in (
        'router_webhooks_total{event="meeting.participantJoined",source="realtimekit",status="200"}',
        'router_signature_failures_total{reason="malformed",source="realtimekit"}',
        "router_publish_seconds_bucket",
        "router_rtk_api_calls_total",
        "router_decisions_total",
        "router_recording_updates_dropped_total",
        "router_consumer_lag",
    ):
        assert name in text, name


@pytest.mark.parametrize("access_log", [True, False])
async def test_access_log_lines_for_accepted_deliveries_can_be_turned_off(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    rtk_private_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
    access_log: bool,
) -> None:
    settings = make_settings()
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"access_log": access_log})}
    )
    app = create_app(settings, role="receiver", bootstrap=broker.bootstrap_servers)
    client = await aiohttp_client(app)
    await wait_ready(client)
    body = joined_body("m-access-log")
    caplog.set_level("INFO", logger="router.receiver")
    accepted = await client.post(RTK, data=body, headers=rtk_headers(rtk_private_key, body))
    refused = await client.post(RTK, data=body, headers={"rtk-signature": "bm9wZQ=="})
    assert (accepted.status, refused.status) == (200, 401)
    lines = [r for r in caplog.records if r.getMessage() == "webhook"]
    # A refused delivery is always logged; an accepted one only with the access log on.
    assert [r.__dict__["status"] for r in lines] == ([200, 401] if access_log else [401])


async def test_a_body_of_exactly_the_default_limit_is_logged(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    rtk_private_key: rsa.RSAPrivateKey,
) -> None:
    """1,048,576 bytes (the default `max_body_bytes`): with its headers and framing it is
    more than a producer's default request size, and it must still reach the log."""
    settings = make_settings(server={"max_body_bytes": 1_048_576})
    app = create_app(settings, role="receiver", bootstrap=broker.bootstrap_servers)
    client = await aiohttp_client(app)
    await wait_ready(client)
    base = joined_body("m-large", note="")
    body = base.replace(b'"note":""', b'"note":"' + b"x" * (1_048_576 - len(base)) + b'"')
    assert len(body) == settings.server.max_body_bytes
    headers = rtk_headers(rtk_private_key, body)
    response = await client.post(RTK, data=io.BytesIO(body), headers=headers)
    assert response.status == 200, await response.text()
    [logged] = await read_topic(settings.kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert logged.value == body
    too_large = body + b" "
    headers = rtk_headers(rtk_private_key, too_large)
    response = await client.post(RTK, data=io.BytesIO(too_large), headers=headers)
    assert response.status == 413
