"""The console against a real run: a router and the RTK emulator on the embedded broker play
four meetings (recorded with a download link, not recorded, failed at RTK, and one titled with
a `<script>`), then the console app serves the topics on a free port. The browser tests drive
it with headless Chromium from the distribution (`/usr/bin/chromium`, `/usr/bin/chromedriver`)
through Selenium, every blocking call in a thread so the router, the emulator and the console
in this event loop keep running."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from router.broker import EmbeddedBroker, free_port
from router.config import ConsoleConfig, KafkaConfig, Settings
from router.console.app import create_console_app
from router.core.story import TOPICS
from router.kafka import TopicAdmin
from tests.plugins.e2e import Loop
from tests.plugins.topics import Driver, has_type, rtk_event, start_driver, until_live

USERNAME = "operator"
PASSWORD = "console-PASSWORD-3f9a1c"
RECORDED = "m-board-review"  # a board meeting: started, stopped, uploaded with a link
NOT_RECORDED = "m-weekly-sync"  # no rule matches one person in a weekly sync
FAILED = "m-board-offsite"  # RTK refuses the start
SCRIPTED = "m-scripted-title"  # titled with a script that must stay text
SCRIPT_TITLE = "<script>window.__pwned = true</script> Board <b>bold</b>"

POLICY = {
    "rules": [
        {
            "name": "three-or-more",
            "on": "meeting.participantJoined",
            "when": {"session.participants": {"gte": 3}},
            "action": "start_recording",
        },
        {
            "name": "board-meetings",
            "on": "meeting.participantJoined",
            "when": {"meeting.title": {"regex": "^Board"}},
            "action": "start_recording",
            "recording": {"file_name_prefix": "board-{meeting.id}"},
        },
        {
            "name": "stop-when-empty",
            "on": "meeting.participantLeft",
            "when": {"session.participants": 0},
            "action": "stop_recording",
        },
    ]
}


@dataclass
class ConsoleRun:
    """The loop that made the topics, and the console serving them."""

    driver: Driver
    url: str

    @property
    def loop(self) -> Loop:
        return self.driver.loop

    def login_header(self, password: str = PASSWORD) -> dict[str, str]:
        token = base64.b64encode(f"{USERNAME}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def join(self, meeting_id: str, title: str, *, expect_decisions: int) -> None:
        """One more person joins; wait for the meeting's n-th decision."""
        await self.driver.deliver(
            rtk_event("meeting.participantJoined", meeting_id, str(uuid.uuid4()), title=title)
        )
        await self.driver.messages(
            "decisions", key=meeting_id, expect=expect_decisions, until=has_type("policy.decision")
        )


def console_settings(settings: Settings, **console: Any) -> Settings:
    """The loop's settings with the console's credentials (and other console keys)."""
    values: dict[str, Any] = {"username": USERNAME, "password": SecretStr(PASSWORD), **console}
    return settings.model_copy(update={"console": ConsoleConfig(**values)})


async def play_meetings(driver: Driver) -> None:
    """The four meetings, until each one's records are on the topics."""
    loop = driver.loop
    steps = [{"action": "join", "participant": "alice", "peer_id": "alice-laptop"}]
    await loop.play({"meeting_id": RECORDED, "title": "Board review", "steps": steps})
    await until_live(loop, RECORDED)
    await driver.messages(
        "recordings", key=RECORDED, until=has_type("recording.status_changed", status="RECORDING")
    )
    leave = [{"action": "leave", "peer_id": "alice-laptop"}]
    await loop.play({"meeting_id": RECORDED, "title": "Board review", "steps": leave})
    await driver.messages(
        "recordings", key=RECORDED, until=has_type("recording.status_changed", status="UPLOADED")
    )

    await loop.control(
        "POST",
        "/faults",
        {"status": 400, "count": 1, "calls": ["start_recording"], "message": "no storage"},
    )
    await ConsoleRun(driver, "").join(FAILED, "Board offsite", expect_decisions=1)
    await loop.control("DELETE", "/faults")
    await ConsoleRun(driver, "").join(NOT_RECORDED, "Weekly sync", expect_decisions=1)
    await ConsoleRun(driver, "").join(SCRIPTED, SCRIPT_TITLE, expect_decisions=1)
    await driver.settled()


async def create_topics(broker: EmbeddedBroker) -> None:
    """The four topics the console reads, by their default names, on a bare broker."""
    kafka = KafkaConfig()
    names = [getattr(kafka.topics, name) for name in TOPICS]
    admin = TopicAdmin(kafka, broker.bootstrap_servers, names)
    try:
        assert await admin.ensure() == []
    finally:
        await admin.close()


async def serve_console(
    stack: AsyncExitStack,
    settings: Settings,
    *,
    require_auth: bool = True,
    app_name: str | None = None,
) -> str:
    """Start the console app on a free port (stopped with `stack`), its pages refreshing as
    often as by default (with `app_name`, of that app's meetings only); its URL."""
    app = create_console_app(settings, require_auth=require_auth, app_name=app_name)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def console_run(make_loop: Callable[..., Awaitable[Loop]]) -> AsyncIterator[ConsoleRun]:
    """The four meetings on the topics, and a console with credentials serving them."""
    driver = await start_driver(make_loop, policy=POLICY)
    await play_meetings(driver)
    async with AsyncExitStack() as stack:
        settings = console_settings(driver.loop.settings)
        url = await serve_console(stack, settings)
        yield ConsoleRun(driver, url)


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """Status, headers and text of a GET (redirects not followed)."""
    async with http.get(url, headers=headers or {}, allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.text()


# Flags for a headless Chromium that reaches nothing but the test's own servers.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,900",
)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Browser:
    """Headless Chromium through Selenium, each call in a thread (they block)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def login(self, headers: dict[str, str]) -> None:
        """Send these headers with every request from now on (the login)."""
        await self.call(self.driver.execute_cdp_cmd, "Network.enable", {})
        await self.call(
            self.driver.execute_cdp_cmd, "Network.setExtraHTTPHeaders", {"headers": headers}
        )

    async def get(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def script(self, source: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, source, *args)

    async def text(self, css: str) -> str:
        """The visible text of the first element matching `css` ('' when there is none)."""
        found: str = await self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
        )
        return found

    async def texts(self, css: str) -> list[str]:
        found: list[str] = await self.script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);", css
        )
        return found

    async def until(self, check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0) -> Any:
        """Poll `check` until it is truthy; its last value either way."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await check()
            if value or asyncio.get_running_loop().time() > deadline:
                return value
            await asyncio.sleep(0.1)

    async def screenshot(self, path: str) -> None:
        await self.call(self.driver.save_screenshot, path)

    async def fit_page(self, width: int = 1280) -> None:
        """Make the window as tall as the page, so that a screenshot shows all of it."""
        height = await self.script("return document.documentElement.scrollHeight;")
        await self.call(self.driver.set_window_size, width, int(height) + 100)

    async def statuses(self, url: str) -> list[int]:
        """The HTTP statuses of the responses for `url` since the last call (from the
        browser's network log)."""
        entries = await self.call(self.driver.get_log, "performance")
        found = []
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.responseReceived":
                response = message["params"]["response"]
                if response["url"] == url:
                    found.append(int(response["status"]))
        return found


def _missing_browser() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh headless Chromium with its own profile, quit after the test. Outside CI a
    machine without Debian's chromium skips the browser tests; in CI they must run."""
    missing = _missing_browser()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = await asyncio.to_thread(
        webdriver.Chrome, service=Service(CHROMEDRIVER), options=options
    )
    try:
        yield Browser(driver)
    finally:
        await asyncio.to_thread(driver.quit)
        shutil.rmtree(profile, ignore_errors=True)
