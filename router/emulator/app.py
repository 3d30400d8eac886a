"""The emulator as an aiohttp application, and a runner that serves it on a port (port 0
picks a free one) for as long as a `with` block lasts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from router.emulator.api import add_api_routes
from router.emulator.config import MAX_REQUEST_BYTES, EmulatorConfig
from router.emulator.control import add_control_routes
from router.emulator.state import EMULATOR_APPS, EMULATOR_STATE, EmulatorState, app_states

PUBLIC_KEY_PATH = "/.well-known/webhooks.json"


def create_emulator_app(config: EmulatorConfig) -> web.Application:
    """The emulator's application; its state is `app[EMULATOR_STATE]`."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    states = app_states(config)
    app[EMULATOR_STATE] = states[config.app_id]
    app[EMULATOR_APPS] = states
    app.router.add_get(PUBLIC_KEY_PATH, _public_key)
    add_api_routes(app)
    add_control_routes(app)
    app.cleanup_ctx.append(_lifetime)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    states = list(app[EMULATOR_APPS].values())
    for state in states:
        await state.start()
    yield
    for state in states:
        await state.close()


async def _public_key(request: web.Request) -> web.Response:
    pem = request.app[EMULATOR_STATE].public_key_pem()
    return web.json_response({"success": True, "data": {"publicKey": pem}, "message": ""})


@dataclass(frozen=True)
class RunningEmulator:
    """A serving emulator: where to reach it and its live state."""

    base_url: str  # what `realtimekit.api_base_url` should be
    state: EmulatorState
    apps: Mapping[str, EmulatorState] = field(default_factory=dict)  # by app id

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def public_key_url(self) -> str:
        return self.base_url + PUBLIC_KEY_PATH

    @property
    def control_url(self) -> str:
        return self.base_url + "/_emulator"

    @property
    def api_url(self) -> str:
        """The base every RTK API path hangs from."""
        c = self.config
        return f"{self.base_url}/accounts/{c.account_id}/realtime/kit/{c.app_id}"

    def control_url_of(self, app_id: str) -> str:
        """The control API of one of the apps served (the main app's is `control_url` too)."""
        return f"{self.control_url}/apps/{app_id}"


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Serve an emulator until the block ends, then stop it and everything it started."""
    app = create_emulator_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        address, bound_port = runner.addresses[0][:2]
        # A wildcard address is where it listens, not where to call it.
        address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)  # noqa: S104
        shown = f"[{address}]" if ":" in address else address
        url = f"http://{shown}:{bound_port}"
        apps: dict[str, EmulatorState] = app[EMULATOR_APPS]
        yield RunningEmulator(url, app[EMULATOR_STATE], apps)
    finally:
        await runner.cleanup()
