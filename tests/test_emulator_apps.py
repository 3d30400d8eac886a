"""The emulator serving several apps by path, as RTK does: each app has its own token,
recordings, calls and faults, and its own control API under `/_emulator/apps/{app id}`."""

from __future__ import annotations

import argparse

import aiohttp
import pytest

from router.emulator.cli import _config, add_arguments
from tests.plugins.emulator import StartEmulator


async def test_calls_are_routed_by_app_id_to_that_apps_state(
    start_emulator: StartEmulator,
) -> None:
    emulator = await start_emulator(more_apps={"app-b": "token-b"})
    main = emulator.config
    base = f"{emulator.base_url}/accounts/{main.account_id}/realtime/kit"
    async with aiohttp.ClientSession() as http:
        # app-b's faults hold for app-b only.
        fault = {"status": 500, "count": 5, "calls": ["start_recording"]}
        async with http.post(emulator.control_url_of("app-b") + "/faults", json=fault) as r:
            assert r.status < 300

        async def start(app: str, token: str) -> int:
            auth = {"Authorization": f"Bearer {token}"}
            body = {"meeting_id": "m-1"}
            async with http.post(f"{base}/{app}/recordings", json=body, headers=auth) as r:
                return r.status

        assert await start(main.app_id, main.api_token) == 201
        assert await start("app-b", "token-b") == 500
        assert await start("app-b", main.api_token) == 500  # (the fault comes first, as in RTK)
        async with http.delete(emulator.control_url_of("app-b") + "/faults") as r:
            assert r.status < 300
        assert await start("app-b", main.api_token) == 401  # app-b's token is its own
        assert await start("app-b", "token-b") == 201
        assert await start("app-c", main.api_token) == 404  # no such app

        async def recordings(control: str) -> list[str]:
            async with http.get(control + "/recordings?meeting_id=m-1") as r:
                return [rec["id"] for rec in await r.json()]

        main_ids = await recordings(emulator.control_url)
        b_ids = await recordings(emulator.control_url_of("app-b"))
        assert len(main_ids) == len(b_ids) == 1
        assert main_ids != b_ids
        assert emulator.apps["app-b"].recordings is not emulator.state.recordings
        async with http.get(emulator.control_url_of("app-c") + "/calls") as r:
            assert r.status == 404
        async with http.get(emulator.control_url_of(main.app_id)) as r:
            assert (await r.json())["app_id"] == main.app_id


def test_more_apps_are_given_on_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--more-app", "app-b=token-b", "--more-app", "app-c=token-c"])
    assert _config(args).more_apps == {"app-b": "token-b", "app-c": "token-c"}
    with pytest.raises(ValueError, match="give APP_ID=TOKEN"):
        _config(parser.parse_args(["--more-app", "app-b"]))
