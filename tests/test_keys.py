"""RTK's public key from the well-known URL: cached, re-fetched after a failure at most once a
minute (rotation), escaped newlines normalised, and 503 while no key can be had."""

from __future__ import annotations

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
        self.rotate()

    def rotate(self) -> rsa.RSAPrivateKey:
        private, self.public_pem = generate_key_pair()
        self.private = load_private_key(private)
        return self.private

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
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

    # Forged deliveries do not make the router hammer the key URL: one refetch a minute.
    forger = load_private_key(generate_key_pair()[0])
    for peer in ("x", "y", "z"):
        forged = joined_body(peer_id=peer)
        response = await client.post(RTK, data=forged, headers=rtk_headers(forger, forged))
        assert response.status == 401
    assert keys.fetches == 2


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
