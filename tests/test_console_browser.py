"""The console in a real browser (SPEC 9.3): headless Chromium logs in, searches a meeting,
reads its verdict, decisions and explanations, sees a new decision arrive without a reload,
gets 401 without credentials, and shows a title holding a `<script>` as text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.plugins.console import (
    FAILED,
    NOT_RECORDED,
    RECORDED,
    SCRIPT_TITLE,
    SCRIPTED,
    Browser,
    ConsoleRun,
)

# Where `scripts/console_screenshot.py` asks for the README's screenshots.
SCREENSHOT_DIR = "CONSOLE_SCREENSHOT_DIR"


async def test_log_in_search_and_read_why_a_meeting_was_not_recorded(
    console_run: ConsoleRun, browser: Browser
) -> None:
    await browser.login(console_run.login_header())
    await browser.get(console_run.url + "/")
    listed = await browser.texts("table.meetings tbody tr")
    assert len(listed) == 4, listed
    badges = {
        row: await browser.text(f'tr[data-meeting="{row}"] .badge')
        for row in (RECORDED, NOT_RECORDED, FAILED)
    }
    assert badges == {RECORDED: "Recorded", NOT_RECORDED: "Not recorded", FAILED: "Failed"}

    await browser.script(
        "document.getElementById('q').value = arguments[0];"
        "document.querySelector('form.search').submit();",
        NOT_RECORDED,
    )
    await browser.until(lambda: _at(browser, f"/meetings/{NOT_RECORDED}"))
    assert await browser.text("h1") == "Weekly sync"
    assert (await browser.text("#verdict")).startswith("Not recorded")
    decisions = await browser.texts("#timeline .kind-decision")
    assert len(decisions) == 1
    assert "no_match on meeting.participantJoined" in decisions[0]
    assert "three-or-more session.participants 1 >= 3: no" in decisions[0]
    assert "board-meetings meeting.title 'Weekly sync' matches regex '^Board': no" in decisions[0]


async def test_a_new_decision_shows_without_a_reload(
    console_run: ConsoleRun, browser: Browser
) -> None:
    await browser.login(console_run.login_header())
    await browser.get(console_run.url + f"/meetings/{NOT_RECORDED}")
    assert len(await browser.texts("#timeline .kind-decision")) == 1
    await browser.script("window.__sameDocument = 'yes';")

    await console_run.join(NOT_RECORDED, "Weekly sync", expect_decisions=2)
    # The page fetches its live part again every 2 s (the default): within 5 s of the decision
    # reaching its topic it shows, in the same document.
    decisions = await browser.until(
        lambda: _two(browser.texts("#timeline .kind-decision")), timeout=5.0
    )
    assert decisions, await browser.texts("#timeline .kind-decision")
    assert await browser.script("return window.__sameDocument;") == "yes"
    assert "no_match on meeting.participantJoined" in decisions[1]


async def test_a_meeting_searched_before_it_starts_shows_when_it_does(
    console_run: ConsoleRun, browser: Browser
) -> None:
    await browser.login(console_run.login_header())
    await browser.get(console_run.url + "/meetings/m-later")
    assert await browser.text("h1") == "Unknown meeting"
    await browser.script("window.__sameDocument = 'yes';")
    await console_run.join("m-later", "Board later", expect_decisions=1)
    await browser.until(lambda: _has(browser, "h1", "Board later"), timeout=5.0)
    assert (await browser.text("#verdict")).startswith("Recorded")
    assert await browser.script("return window.__sameDocument;") == "yes"


async def test_without_credentials_the_browser_gets_401(
    console_run: ConsoleRun, browser: Browser
) -> None:
    for path in ("/", f"/meetings/{RECORDED}", "/api/meetings"):
        await browser.get(console_run.url + path)
        statuses = await browser.statuses(console_run.url + path)
        assert statuses == [401], (path, statuses)
        assert RECORDED not in await browser.call(lambda: browser.driver.page_source)


async def test_a_title_with_a_script_is_text_on_the_page(
    console_run: ConsoleRun, browser: Browser
) -> None:
    await browser.login(console_run.login_header())
    await browser.get(console_run.url + "/")
    assert await browser.text(f'tr[data-meeting="{SCRIPTED}"] td.title') == SCRIPT_TITLE
    await browser.get(console_run.url + f"/meetings/{SCRIPTED}")
    assert await browser.text("h1") == SCRIPT_TITLE
    assert await browser.script("return document.querySelectorAll('#live script').length") == 0
    assert await browser.script("return document.querySelectorAll('#live b').length") == 0
    assert await browser.script("return window.__pwned === undefined;")


async def test_the_recorded_meeting_and_the_readme_screenshots(
    console_run: ConsoleRun, browser: Browser, tmp_path: Path
) -> None:
    await browser.login(console_run.login_header())
    await browser.get(console_run.url + "/")
    await browser.screenshot(str(tmp_path / "console-meetings.png"))
    await browser.get(console_run.url + f"/meetings/{RECORDED}")
    await browser.fit_page()
    assert (await browser.text("#verdict")).startswith("Recorded")
    recordings = await browser.texts("ul.recordings li")
    assert len(recordings) == 1
    assert recordings[0].startswith("UPLOADED")
    link = await browser.script("return document.querySelector('a.download').href;")
    published = await console_run.driver.values("recordings", key=RECORDED)
    assert link == next(r["download_url"] for r in published if r["status"] == "UPLOADED")
    await browser.screenshot(str(tmp_path / "console.png"))
    for name in ("console.png", "console-meetings.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    wanted = os.environ.get(SCREENSHOT_DIR)
    if wanted:
        for name in ("console.png", "console-meetings.png"):
            shutil.copy(tmp_path / name, Path(wanted) / name)


async def _at(browser: Browser, path: str) -> bool:
    url: str = await browser.call(lambda: browser.driver.current_url)
    return url.endswith(path)


async def _has(browser: Browser, css: str, text: str) -> bool:
    return await browser.text(css) == text


async def _two(texts: object) -> list[str] | None:
    found: list[str] = await texts  # type: ignore[misc]
    return found if len(found) >= 2 else None
