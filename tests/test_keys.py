"""RTK's public key from the well-known URL: cached, re-fetched after a failure at most once a
minute (rotation), escaped newlines normalised, and 503 while no key can be had. A key problem
of ours is never a 401: forged requests around a rotation, a slow key URL, garbage or an
oversized key document all end in 503, which RTK retries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from router.app import create_app
from router.broker import EmbeddedBroker
from router.config import Settings
from router.core.signature import generate_key_pair, load_private_key
from tests.helpers import joined_body, rtk_headers

RTK = "/webhooks/realtimekit"


class KeyServer:
    """Serves `/.well-known/webhooks.json` with a key that the test can rotate or break."""

    def __init__(self) -> None:
        self.fetches = 0
        self.status = 200
        self.escaped = False
        self.delay = 0.0
        self.raw: bytes | None = None  # served instead of the key document when set
        self.rotate()

    def rotate(self) -> rsa.RSAPrivateKey:
        private, self.public_pem = generate_key_pair()
        self.private = load_private_key(private)
        return self.private

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return web.Response(body=self.raw, content_type="application/json")
        if self.status != 200:
            return web.json_response({"success": False}, status=self.status)
        pem = self.public_pem.decode()
        if self.escaped:  # as RTK has been seen to serve it: literal backslash-n pairs
            pem = pem.replace("\n", "\\n")
        return web.json_response({"success": True, "data": {"publicKey": pem}, "message": ""})


@pytest.fixture
async def key_server(aiohttp_server: Callable[..., Any]) -> tuple[KeyServer, TestServer]:
    keys = KeyServer()
    app = web.Application()
    app.router.add_get("/.well-known/webhooks.json", keys.handle)
    return keys, await aiohttp_server(app)


async def _client(
    aiohttp_client: Callable[..., Any],
    broker: EmbeddedBroker,
    make_settings: Callable[..., Settings],
    server: TestServer,
    refetch_interval: float,
    **signature: Any,
) -> TestClient:
    url = str(server.make_url("/.well-known/webhooks.json"))
    settings = make_settings()
    source = settings.sources[0].model_copy(
        update={
            "signature": settings.sources[0].signature.model_copy(
                update={
                    "public_key_file": None,
                    "public_key_url": url,
                    "refetch_interval_seconds": refetch_interval,
                    **signature,
                }
            )
        }
    )
    settings = settings.model_copy(update={"sources": [source]})
    app = create_app(settings, bootstrap=broker.bootstrap_servers, health_interval=0.2)
    client: TestClient = await aiohttp_client(app)
    return client


@pytest.mark.parametrize("escaped", [False, True], ids=["plain-pem", "escaped-newlines"])
async def test_key_from_url_is_cached(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
    escaped: bool,
) -> None:
    keys, server = key_server
    keys.escaped = escaped
    client = await _client(aiohttp_client, broker, make_settings, server, refetch_interval=60)
    for peer in ("a", "b", "c"):
        body = joined_body(peer_id=peer)
        response = await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
        assert response.status == 200
    assert keys.fetches == 1


async def test_rotation_is_picked_up_and_refetch_is_rate_limited(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
) -> None:
    keys, server = key_server
    client = await _client(aiohttp_client, broker, make_settings, server, refetch_interval=60)
    body = joined_body(peer_id="first")
    assert (
        await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
    ).status == 200
    assert keys.fetches == 1

    new_key = keys.rotate()  # RTK rotates: the first delivery signed with it triggers a refetch
    body = joined_body(peer_id="second")
    assert (await client.post(RTK, data=body, headers=rtk_headers(new_key, body))).status == 200
    assert keys.fetches == 2

    # Forged deliveries do not make the router hammer the key URL: one refetch a minute. No
    # key fetched since they arrived has refused them, so they get 503, not 401 (a genuine
    # delivery signed with a key rotated a moment ago would look the same).
    forger = load_private_key(generate_key_pair()[0])
    for peer in ("x", "y", "z"):
        forged = joined_body(peer_id=peer)
        response = await client.post(RTK, data=forged, headers=rtk_headers(forger, forged))
        assert response.status == 503
        assert "Retry-After" in response.headers
    assert keys.fetches == 2


async def test_a_forgery_refused_by_a_key_fetched_after_it_arrived_is_a_401(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
) -> None:
    keys, server = key_server
    client = await _client(aiohttp_client, broker, make_settings, server, refetch_interval=60)
    body = joined_body(peer_id="first")
    assert (
        await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
    ).status == 200
    forger = load_private_key(generate_key_pair()[0])
    forged = joined_body(peer_id="forged")
    response = await client.post(RTK, data=forged, headers=rtk_headers(forger, forged))
    assert response.status == 401  # the window was open: a fresh key refused it
    assert keys.fetches == 2


async def test_forged_requests_around_a_rotation_lose_no_genuine_delivery(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
) -> None:
    """An attacker posts forged deliveries all the time, spending every re-fetch window the
    moment it opens; RTK rotates its key. Every genuine delivery, signed with the old key or
    the new one, ends 200, at once or on a retry after a 503; none is refused with 401."""
    keys, server = key_server
    client = await _client(aiohttp_client, broker, make_settings, server, refetch_interval=0.5)
    forger = load_private_key(generate_key_pair()[0])
    forged_statuses: list[int] = []
    stop = asyncio.Event()

    async def forge() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            forged = joined_body(peer_id=f"forged-{n}")
            response = await client.post(RTK, data=forged, headers=rtk_headers(forger, forged))
            forged_statuses.append(response.status)
            await asyncio.sleep(0.02)

    async def deliver(key: Any, peer: str) -> list[int]:
        """Posts like RTK: retried after each 5xx (the router's Retry-After is shortened)."""
        body = joined_body(peer_id=peer)
        headers = rtk_headers(key, body)
        statuses: list[int] = []
        for _ in range(60):
            statuses.append((await client.post(RTK, data=body, headers=headers)).status)
            if statuses[-1] < 500:
                break
            await asyncio.sleep(0.1)
        return statuses

    rng = random.Random(3)
    attacker = asyncio.create_task(forge())
    try:
        before = await asyncio.gather(*(deliver(keys.private, f"old-{n}") for n in range(5)))
        await asyncio.sleep(0.6)  # a forged request spends the window that opens now
        new_key = keys.rotate()
        after = []
        for n in range(20):
            after.append(asyncio.create_task(deliver(new_key, f"new-{n}")))
            await asyncio.sleep(rng.uniform(0, 0.05))
        after_statuses = await asyncio.gather(*after)
    finally:
        stop.set()
        await attacker
    for statuses in [*before, *after_statuses]:
        assert statuses[-1] == 200, statuses
        assert set(statuses) <= {200, 503}, statuses
    assert any(503 in statuses for statuses in after_statuses)  # the window was spent
    assert 200 not in forged_statuses
    assert 401 in forged_statuses  # the forger was refused whenever a fresh key could say so


@pytest.mark.parametrize(
    ("trouble", "expected"),
    [
        ({"delay": 1.0}, "TimeoutError"),
        ({"raw": b"<html>busy</html>"}, "JSONDecodeError"),
        ({"raw": b'{"data": {"publicKey": "not a key"}}'}, "ValueError"),
        (
            {"raw": b'{"data": {"publicKey": "' + b"A" * 100_000 + b'"}}'},
            "max_key_bytes (65536 bytes)",
        ),
    ],
    ids=["slow", "not-json", "not-a-key", "oversized"],
)
async def test_a_key_url_in_trouble_after_a_rotation_means_503_not_401(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
    trouble: dict[str, Any],
    expected: str,
) -> None:
    keys, server = key_server
    client = await _client(
        aiohttp_client,
        broker,
        make_settings,
        server,
        refetch_interval=0,
        key_fetch_timeout_seconds=0.3,
    )
    body = joined_body(peer_id="first")
    assert (
        await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
    ).status == 200
    new_key = keys.rotate()
    for name, value in trouble.items():
        setattr(keys, name, value)
    body = joined_body(peer_id="second")
    response = await client.post(RTK, data=body, headers=rtk_headers(new_key, body))
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert expected in (await response.json())["detail"]
    # Once the key URL answers again, RTK's retry of the same delivery is accepted.
    keys.delay, keys.raw = 0.0, None
    assert (await client.post(RTK, data=body, headers=rtk_headers(new_key, body))).status == 200


async def test_an_oversized_key_document_is_not_read_whole(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
) -> None:
    keys, server = key_server
    keys.raw = b'{"data": {"publicKey": "' + b"A" * 5_000_000 + b'"}}'
    client = await _client(
        aiohttp_client, broker, make_settings, server, refetch_interval=0, max_key_bytes=4096
    )
    body = joined_body()
    response = await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
    assert response.status == 503
    ready = await (await client.get("/readyz")).json()
    assert (
        "the key document is larger than max_key_bytes (4096 bytes)"
        in (ready["checks"]["key:realtimekit"])
    )


async def test_no_key_means_503_then_recovery(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    key_server: tuple[KeyServer, TestServer],
) -> None:
    keys, server = key_server
    keys.status = 500
    client = await _client(aiohttp_client, broker, make_settings, server, refetch_interval=0)
    body = joined_body()
    response = await client.post(RTK, data=body, headers=rtk_headers(keys.private, body))
    assert response.status == 503
    assert "Retry-After" in response.headers
    ready = await (await client.get("/readyz")).json()
    assert ready["ready"] is False
    assert "no RTK public key" in ready["checks"]["key:realtimekit"]
