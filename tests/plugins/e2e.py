"""The whole loop in one test: the embedded broker, the RTK emulator over HTTP, and routers
(in-process apps on free ports, or `router serve` processes that a test may kill) wired to both.
Only RTK is emulated; everything else is real."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
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
from router.kafka import Consumed
from tests.helpers import read_topic, rtk_headers
from tests.plugins.emulator import StartEmulator

REPO = Path(__file__).resolve().parents[2]


async def ready(http: aiohttp.ClientSession, url: str) -> bool:
    """Whether the router at `url` answers `/readyz` with 200."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with http.get(url + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status == 200
    return False


@dataclass
class RunningRouter:
    """A router app serving on a free port."""

    url: str
    runner: web.AppRunner
    stopped: bool = False

    async def stop(self) -> None:
        """Shut down as on SIGTERM (drain, commit, leave the group); once only."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()


@dataclass
class ChildRouter:
    """`router serve` in a child process, so that a test can kill it for real."""

    url: str
    process: asyncio.subprocess.Process
    log_file: Path

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, size: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-size:]

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Poll `/readyz` until it answers 200; fail with the log if it never does."""
        deadline = monotonic() + timeout
        while not await ready(http, self.url):
            assert self.running, f"router exited with {self.process.returncode}:\n{self.log_tail()}"
            assert monotonic() < deadline, f"router not ready in {timeout} s:\n{self.log_tail()}"
            await asyncio.sleep(0.2)

    async def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye to the group; then reap it."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit (SIGKILL if it hangs); the exit code."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        return await self.process.wait()


@dataclass
class Loop:
    """Broker, emulator and a way to start routers configured for both."""

    broker: EmbeddedBroker
    emulator: RunningEmulator
    settings: Settings
    start_router: Callable[..., Awaitable[RunningRouter]]
    http: aiohttp.ClientSession
    # `router serve` as a child process, configured like the in-process routers.
    start_process: Callable[..., Awaitable[ChildRouter]] = field(repr=False)

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

    async def calls(self, *names: str) -> list[dict[str, Any]]:
        """The API calls the emulator answered (of the given call names, if any), in order."""
        calls = await self.control("GET", "/calls")
        rows: list[dict[str, Any]] = calls["calls"] if isinstance(calls, dict) else calls
        return [c for c in rows if not names or c["call"] in names]

    async def starts(self, meeting_id: str | None = None) -> list[dict[str, Any]]:
        """The `POST /recordings` calls the emulator answered."""
        return [
            c
            for c in await self.calls("start_recording")
            if c.get("status", 0) < 300
            and (meeting_id is None or c.get("meeting_id") == meeting_id)
        ]

    async def recordings(self, meeting_id: str) -> list[dict[str, Any]]:
        """The emulator's recordings of a meeting, with their status history."""
        found: list[dict[str, Any]] = await self.control(
            "GET", f"/recordings?meeting_id={meeting_id}"
        )
        return found

    async def webhooks(self, meeting_id: str, event: str) -> list[dict[str, Any]]:
        """The emulator's deliveries of one event type for a meeting (with their `rtk-uuid`)."""
        rows: list[dict[str, Any]] = await self.control("GET", "/webhooks")
        return [d for d in rows if d["key"] == meeting_id and d["event"] == event]

    async def deliver(
        self,
        url: str,
        body: bytes,
        *,
        delivery_id: str | None = None,
        webhook_id: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST `body` to a router's source as RTK would, signed with the emulator's key."""
        headers = rtk_headers(
            self.emulator.state.private_key,
            body,
            delivery_id=delivery_id or str(uuid.uuid4()),
            webhook_id=webhook_id or self.emulator.config.webhook_id,
        )
        async with self.http.post(url + "/webhooks/realtimekit", data=body, headers=headers) as r:
            answer: dict[str, Any] = await r.json()
            return r.status, answer

    async def topic(self, name: str, *, expect: int = 0, timeout: float = 20.0) -> list[Consumed]:
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


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert monotonic() < deadline, f"still false after {timeout} s: {result!r}"
        await asyncio.sleep(interval)


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
            "fetch_max_wait_ms": 20,  # the test broker is the embedded one, run apart
            "session_timeout_seconds": 2,
            "partitions": 3,
            "ack_timeout_seconds": 3,
        },
        "policy": {"mode": "enforce", "rules": []},
    }
    if "apps" in sections:  # the apps form: each app has its own realtimekit and policy
        del config["realtimekit"], config["policy"]
    for name, values in sections.items():
        if isinstance(values, list):  # `sources=[...]`: more sources beside the emulator's
            config[name] = [*config.get(name, []), *values]
        else:
            config[name] = {**config.get(name, {}), **values}
    return config


def app_config(
    emulator: RunningEmulator, name: str, app_id: str, sources: list[str], policy: dict[str, Any]
) -> dict[str, Any]:
    """One app of the `apps` form, calling the emulator's app `app_id`."""
    token = emulator.apps[app_id].config.api_token
    return {
        "name": name,
        "realtimekit": {
            "api_base_url": emulator.base_url,
            "account_id": emulator.config.account_id,
            "app_id": app_id,
            "api_token": token,
            "retry_seconds": 30,
        },
        "sources": sources,
        "policy": policy,
    }


@pytest.fixture
async def make_loop(
    broker: EmbeddedBroker, start_emulator: StartEmulator, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Loop]]]:
    """Build a loop with the given config sections; routers and emulator stop afterwards."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(emulator_options: dict[str, Any] | None = None, **sections: Any) -> Loop:
            emulator = await start_emulator(idle_stop_seconds=None, **(emulator_options or {}))
            for name, section in sections.items():  # (sections made for this very emulator)
                if callable(section):
                    sections[name] = section(emulator)
            config = loop_config(emulator, broker.bootstrap_servers, **sections)
            settings = parse_config(json.dumps(config), "loop.yaml", {}).settings

            async def start_router(role: Role = "all", *, wait: bool = True) -> RunningRouter:
                """An in-process router; by default once `/readyz` says it is ready."""
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
                if wait:
                    await eventually(lambda: ready(http, router.url), timeout=30, interval=0.1)
                return router

            async def start_process() -> ChildRouter:
                port = free_port()
                mine = {**config, "server": {**config["server"], "port": port}}
                path = tmp_path / f"router-{port}.json"
                path.write_text(json.dumps(mine), encoding="utf-8")
                log_file = tmp_path / f"router-{port}.log"
                with log_file.open("wb") as out:
                    process = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "router.cli",
                        "serve",
                        "--config",
                        str(path),
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        cwd=REPO,
                        env={k: v for k, v in os.environ.items() if k != "ROUTER_CONFIG"},
                    )
                child = ChildRouter(f"http://127.0.0.1:{port}", process, log_file)
                stack.push_async_callback(child.terminate)
                return child

            return Loop(broker, emulator, settings, start_router, http, start_process)

        yield make


async def wire(loop: Loop, router: RunningRouter | ChildRouter) -> None:
    """Point the emulator's webhooks at a router."""
    await loop.control("PUT", "/webhooks/url", {"url": router.url + "/webhooks/realtimekit"})
