"""The whole loop in one test: the embedded broker, the RTK emulator over HTTP, and routers
(in-process apps on free ports) wired to both. Only RTK is emulated; everything else is real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.app import Role, create_app
from router.broker import EmbeddedBroker, free_port
from router.clock import monotonic
from router.config import Settings, parse_config
from router.emulator import RunningEmulator
from router.kafka import Record
from tests.helpers import read_topic
from tests.plugins.emulator import StartEmulator


@dataclass
class RunningRouter:
    """A router app serving on a free port."""

    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


@dataclass
class Loop:
    """Broker, emulator and a way to start routers configured for both."""

    broker: EmbeddedBroker
    emulator: RunningEmulator
    settings: Settings
    start_router: Callable[..., Awaitable[RunningRouter]]
    http: aiohttp.ClientSession

    @property
    def kafka(self) -> Any:
        return self.settings.kafka

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the emulator's control API."""
        url = self.emulator.control_url + path
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def play(self, script: dict[str, Any]) -> None:
        await self.control("POST", "/meetings/play", script)

    async def starts(self, meeting_id: str | None = None) -> list[dict[str, Any]]:
        """The `POST /recordings` calls the emulator answered."""
        calls = await self.control("GET", "/calls")
        rows = calls["calls"] if isinstance(calls, dict) else calls
        return [
            c
            for c in rows
            if c["call"] == "start_recording"
            and c.get("status", 0) < 300
            and (meeting_id is None or c.get("meeting_id") == meeting_id)
        ]

    async def topic(self, name: str, *, expect: int = 0, timeout: float = 20.0) -> list[Record]:
        topic = getattr(self.kafka.topics, name)
        return await read_topic(
            self.kafka, self.broker.bootstrap_servers, topic, expect=expect, timeout=timeout
        )

    async def decisions(
        self, meeting_id: str, *, expect: int, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """The decisions for a meeting, once at least `expect` of them are on the topic."""
        deadline = monotonic() + timeout
        while True:
            found = [
                json.loads(r.value or b"{}")
                for r in await self.topic("decisions", timeout=5)
                if r.key == meeting_id.encode()
            ]
            if len(found) >= expect or monotonic() > deadline:
                return found
            await asyncio.sleep(0.3)


def loop_config(emulator: RunningEmulator, bootstrap: str, **sections: Any) -> dict[str, Any]:
    """A router configuration for the loop (policy and other sections overridable)."""
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 5},
        "sources": [
            {
                "name": "realtimekit",
                "path": "/webhooks/realtimekit",
                "signature": {"scheme": "rtk-rsa", "public_key_url": emulator.public_key_url},
            }
        ],
        "realtimekit": {
            "api_base_url": emulator.base_url,
            "account_id": emulator.config.account_id,
            "app_id": emulator.config.app_id,
            "api_token": emulator.config.api_token,
            "retry_seconds": 30,
        },
        "kafka": {
            "bootstrap_servers": bootstrap,
            "idempotent": False,
            "session_timeout_seconds": 2,
            "partitions": 3,
            "ack_timeout_seconds": 3,
        },
        "policy": {"mode": "enforce", "rules": []},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


@pytest.fixture
async def make_loop(
    broker: EmbeddedBroker, start_emulator: StartEmulator, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Loop]]]:
    """Build a loop with the given config sections; routers and emulator stop afterwards."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(emulator_options: dict[str, Any] | None = None, **sections: Any) -> Loop:
            emulator = await start_emulator(idle_stop_seconds=None, **(emulator_options or {}))
            config = loop_config(emulator, broker.bootstrap_servers, **sections)
            settings = parse_config(json.dumps(config), "loop.yaml", {}).settings

            async def start_router(role: Role = "all", **overrides: Any) -> RunningRouter:
                port = free_port()
                mine = settings.model_copy(
                    update={"server": settings.server.model_copy(update={"port": port})}
                )
                app = create_app(
                    mine, role=role, bootstrap=broker.bootstrap_servers, health_interval=0.5
                )
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                router = RunningRouter(f"http://127.0.0.1:{port}", runner)
                stack.push_async_callback(router.stop)
                return router

            return Loop(broker, emulator, settings, start_router, http)

        yield make


async def wire(loop: Loop, router: RunningRouter) -> None:
    """Point the emulator's webhooks at a router."""
    await loop.control("PUT", "/webhooks/url", {"url": router.url + "/webhooks/realtimekit"})
