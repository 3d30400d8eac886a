"""A router (with its own embedded broker) running in a background thread, for synchronous
tests such as hypothesis properties that drive it over plain HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from router.app import create_app
from router.broker import EmbeddedBroker, free_port
from router.config import Settings


class LiveRouter:
    """Starts broker and app on a private event loop; `port` is where it listens."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._broker: EmbeddedBroker | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._broker = EmbeddedBroker(port=free_port())
        await self._broker.start()
        app = create_app(self._settings, bootstrap=self._broker.bootstrap_servers)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._broker is not None:
            await self._broker.stop()


@pytest.fixture(scope="module")
def live_router_factory() -> Iterator[list[LiveRouter]]:
    """Routers started by a module's tests, all stopped when the module is done."""
    started: list[LiveRouter] = []
    yield started
    for router in started:
        router.stop()
