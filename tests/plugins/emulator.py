"""Fixtures for the RTK client and emulator tests: running emulators on free ports, a webhook
receiver that records what it is sent, a fake clock whose sleeps take no time, and clients
wired to all three."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from router.core.signature import generate_key_pair, load_public_key, rsa_verify
from router.emulator import EmulatorConfig, RunningEmulator, running_emulator
from router.metrics import Metrics
from router.realtimekit import RtkClient


@pytest.fixture(scope="session")
def emulator_key_pem() -> bytes:
    """One signing key for every emulator of the run (generating one per test is slow)."""
    return generate_key_pair()[0]


@dataclass
class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps."""

    now: float = 1000.0
    waits: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


StartEmulator = Callable[..., Awaitable[RunningEmulator]]


@pytest.fixture
async def start_emulator(emulator_key_pem: bytes) -> AsyncIterator[StartEmulator]:
    """Start emulators (fast timings, the shared key, any config overrides); all stop after
    the test."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> RunningEmulator:
            settings: dict[str, Any] = {
                "private_key_pem": emulator_key_pem,
                "start_delay": 0.05,
                "upload_delay": 0.05,
                "webhook_backoff": 0.01,
                **overrides,
            }
            return await stack.enter_async_context(running_emulator(EmulatorConfig(**settings)))

        yield start


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> RunningEmulator:
    return await start_emulator()


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


class WebhookReceiver:
    """Records every delivery; answers the statuses queued in `answers`, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response({"status": status}, status=status)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.01)
        return list(self.received)

    def verified(self, public_key_pem: str) -> list[dict[str, Any]]:
        """Every payload, after checking its signature over the exact bytes received."""
        key = load_public_key(public_key_pem)
        for delivery in self.received:
            rsa_verify([key], delivery.headers.get("rtk-signature"), delivery.body)
        return [d.payload for d in self.received]


@pytest.fixture
async def webhook_receiver(aiohttp_server: AiohttpServer) -> WebhookReceiver:
    receiver = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/hooks/rtk", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/hooks/rtk"))
    return receiver


class Control:
    """Plain HTTP to an emulator's control API and its RTK API, as a user would drive them."""

    def __init__(self, session: aiohttp.ClientSession, emulator: RunningEmulator) -> None:
        self.session = session
        self.emulator = emulator

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.emulator.control_url + path
        async with self.session.request(method, url, json=body) as response:
            return response.status, await response.json()

    async def api(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        token = self.emulator.config.api_token if token is None else token
        headers = {"Authorization": f"Bearer {token}"}
        url = self.emulator.api_url + path
        async with self.session.request(method, url, json=body, headers=headers) as response:
            return response.status, await response.json(), dict(response.headers)

    async def calls(self) -> list[dict[str, Any]]:
        status, calls = await self.request("GET", "/calls")
        assert status == 200
        result: list[dict[str, Any]] = calls
        return result


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def control(http: aiohttp.ClientSession, emulator: RunningEmulator) -> Control:
    return Control(http, emulator)


MakeClient = Callable[..., RtkClient]


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[MakeClient]:
    """RTK clients for an emulator, on the fake clock unless told otherwise; closed after."""
    clients: list[RtkClient] = []

    def make(emulator: RunningEmulator, **overrides: Any) -> RtkClient:
        config = emulator.config
        settings: dict[str, Any] = {
            "base_url": emulator.base_url,
            "account_id": config.account_id,
            "app_id": config.app_id,
            "api_token": config.api_token,
            "sleep": fake_time.sleep,
            "monotonic": fake_time.monotonic,
            "metrics": Metrics(),
            **overrides,
        }
        client = RtkClient(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
