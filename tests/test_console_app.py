"""`router console` over HTTP (SPEC 9.3) against a real run on the embedded broker: every path
behind Basic authentication, the pages and their JSON, escaping, and no secret shown."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from contextlib import AsyncExitStack

import aiohttp
from aiokafka import AIOKafkaProducer

from router.broker import EmbeddedBroker
from router.config import Settings
from tests.plugins.console import (
    FAILED,
    NOT_RECORDED,
    PASSWORD,
    RECORDED,
    SCRIPT_TITLE,
    SCRIPTED,
    USERNAME,
    ConsoleRun,
    console_settings,
    create_topics,
    get,
    serve_console,
)
from tests.plugins.e2e import eventually

PATHS = [
    "/",
    f"/meetings/{RECORDED}",
    "/api/meetings",
    f"/api/meetings/{RECORDED}",
    "/static/console.js",
    "/static/console.css",
    "/no/such/path",
]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


REFUSED = {
    "none": {},
    "wrong-password": basic(USERNAME, "wrong"),
    "wrong-user": basic("someone", PASSWORD),
    "longer": basic(USERNAME, PASSWORD + "x"),
    "empty": basic(USERNAME, ""),
    "bearer": {"Authorization": "Bearer " + PASSWORD},
    "garbage": {"Authorization": "Basic not-base64!"},
    "no-colon": {"Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()},
}


async def test_every_path_needs_the_credentials(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession() as http:
        for case, headers in REFUSED.items():
            for path in PATHS:
                status, answer_headers, text = await get(http, console_run.url + path, headers)
                assert status == 401, (case, path)
                assert answer_headers["WWW-Authenticate"] == 'Basic realm="rtk-router"'
                assert RECORDED not in text
        for path in PATHS[:-1]:
            status, _, _ = await get(http, console_run.url + path, basic(USERNAME, PASSWORD))
            assert status == 200, path


async def test_without_auth_nothing_is_asked(console_run: ConsoleRun) -> None:
    async with AsyncExitStack() as stack:
        url = await serve_console(stack, console_run.loop.settings, require_auth=False)
        async with aiohttp.ClientSession() as http:
            status, headers, text = await get(http, url + f"/meetings/{RECORDED}")
            assert status == 200
            assert "WWW-Authenticate" not in headers
            assert "Board review" in text


async def test_recent_meetings_as_json(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        status, _, text = await get(http, console_run.url + "/api/meetings?limit=10")
        assert status == 200
        meetings = {m["meeting_id"]: m for m in json.loads(text)["meetings"]}
        assert meetings[RECORDED]["verdict"] == "recorded"
        assert meetings[RECORDED]["title"] == "Board review"
        assert meetings[RECORDED]["participants_present"] == 0  # (everyone left)
        assert meetings[NOT_RECORDED]["verdict"] == "not_recorded"
        assert meetings[NOT_RECORDED]["participants_present"] == 1
        assert meetings[FAILED]["verdict"] == "failed"
        assert meetings[SCRIPTED]["title"] == SCRIPT_TITLE
        # The most recently active first: the scripted title's join came last.
        assert next(iter(meetings)) == SCRIPTED

        status, _, text = await get(http, console_run.url + "/api/meetings?limit=2")
        assert [m["meeting_id"] for m in json.loads(text)["meetings"]] == [SCRIPTED, NOT_RECORDED]
        for bad in ("0", "-1", "x", "100000", "²", "9" * 5000, "1.5", ""):
            status, _, text = await get(http, console_run.url + f"/api/meetings?limit={bad}")
            assert status == 400, bad
            assert json.loads(text)["error"] == "invalid_limit"


async def test_a_meeting_story_as_json(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        status, _, text = await get(http, console_run.url + f"/api/meetings/{RECORDED}")
        assert status == 200
        story = json.loads(text)
        assert set(story) == {"meeting_id", "timeline", "verdict"}
        assert story["meeting_id"] == RECORDED
        assert story["verdict"]["verdict"] == "recorded"
        kinds = [entry["kind"] for entry in story["timeline"]]
        assert kinds[0] == "meeting.started"
        assert "decision" in kinds
        assert "recording" in kinds
        times = [entry["time"] for entry in story["timeline"]]
        assert times == sorted(times)

        status, _, text = await get(http, console_run.url + f"/api/meetings/{FAILED}")
        assert json.loads(text)["verdict"]["verdict"] == "failed"


async def test_an_unknown_meeting_is_404_with_one_line(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        status, _, text = await get(http, console_run.url + "/api/meetings/m-never-seen")
        assert status == 404
        assert json.loads(text) == {
            "error": "unknown_meeting",
            "detail": "nothing is known of meeting m-never-seen",
        }
        status, _, text = await get(http, console_run.url + "/meetings/m-never-seen")
        assert status == 404
        assert "Unknown meeting" in text


async def test_search_goes_to_the_meeting_page(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        status, headers, _ = await get(http, console_run.url + f"/?q=+{RECORDED}+")
        assert status == 302
        assert headers["Location"] == f"/meetings/{RECORDED}"
        # An id is quoted whole into the path: nothing of it can leave the meetings path.
        status, headers, _ = await get(http, console_run.url + "/?q=../api/x?y")
        assert headers["Location"] == "/meetings/..%2Fapi%2Fx%3Fy"


async def test_a_title_with_markup_is_escaped(console_run: ConsoleRun) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        for path in ("/", f"/meetings/{SCRIPTED}"):
            status, headers, text = await get(http, console_run.url + path)
            assert status == 200
            assert "<script>window.__pwned" not in text
            assert "&lt;script&gt;window.__pwned = true&lt;/script&gt; Board &lt;b&gt;" in text
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"


async def test_the_meeting_page_shows_verdict_recordings_and_explanations(
    console_run: ConsoleRun,
) -> None:
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        _, _, text = await get(http, console_run.url + f"/meetings/{RECORDED}")
        assert 'class="badge verdict-recorded">Recorded<' in text
        assert "UPLOADED" in text
        assert 'class="download" href="http' in text
        _, _, text = await get(http, console_run.url + f"/meetings/{NOT_RECORDED}")
        assert 'class="badge verdict-not_recorded">Not recorded<' in text
        assert "session.participants 1 &gt;= 3: no" in text  # (escaped, like everything)
        _, _, text = await get(http, console_run.url + f"/meetings/{FAILED}")
        assert 'class="badge verdict-failed">Failed<' in text


async def test_no_secret_is_shown(console_run: ConsoleRun) -> None:
    token = console_run.loop.emulator.config.api_token
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
        for path in (*PATHS, f"/meetings/{FAILED}", f"/api/meetings/{FAILED}"):
            _, _, text = await get(http, console_run.url + path)
            assert token not in text, path
            assert PASSWORD not in text, path


async def test_a_meeting_older_than_the_history_is_read_from_its_partition(
    console_run: ConsoleRun,
) -> None:
    async with AsyncExitStack() as stack:
        settings = console_settings(
            console_run.loop.settings, history_per_partition=0, max_meetings=2
        )
        url = await serve_console(stack, settings)
        async with aiohttp.ClientSession(headers=console_run.login_header()) as http:
            _, _, text = await get(http, url + "/api/meetings")
            assert json.loads(text) == {"meetings": []}  # (no history read at start)
            for meeting_id in (RECORDED, NOT_RECORDED, FAILED):
                status, _, text = await get(http, url + f"/api/meetings/{meeting_id}")
                assert status == 200
                whole = json.loads(text)
                _, _, text = await get(http, console_run.url + f"/api/meetings/{meeting_id}")
                assert whole == json.loads(text)
            # At most two meetings are kept: the one read first is forgotten.
            _, _, text = await get(http, url + "/api/meetings?limit=2")
            listed = [m["meeting_id"] for m in json.loads(text)["meetings"]]
            assert sorted(listed) == sorted([NOT_RECORDED, FAILED])


async def test_a_broker_gone_is_503_for_what_was_not_followed(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> None:
    settings = console_settings(
        make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    )
    await create_topics(broker)
    async with AsyncExitStack() as stack:
        url = await serve_console(stack, settings)
        await broker.stop()
        async with aiohttp.ClientSession(headers=basic(USERNAME, PASSWORD)) as http:
            status, _, text = await get(http, url + "/api/meetings/m-anything")
            assert status == 503
            assert json.loads(text)["error"] == "unavailable"
            status, _, text = await get(http, url + "/meetings/m-anything")
            assert status == 503
            assert "Topics unavailable" in text
            status, _, _ = await get(http, url + "/")
            assert status == 200


async def test_a_malformed_record_is_a_line_of_the_story(console_run: ConsoleRun) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=console_run.loop.broker.bootstrap_servers)
    await producer.start()
    try:
        topic = console_run.loop.kafka.topics.decisions
        await producer.send_and_wait(topic, b"<not json>", key=NOT_RECORDED.encode())
    finally:
        await producer.stop()
    async with aiohttp.ClientSession(headers=console_run.login_header()) as http:

        async def shown() -> str | None:
            status, _, text = await get(http, console_run.url + f"/meetings/{NOT_RECORDED}")
            assert status == 200
            return text if "kind-malformed" in text else None

        text = await eventually(shown, timeout=10)
        assert "unreadable record on decisions" in text
        assert "&lt;not json&gt;" not in text
        assert "<not json>" not in text
        assert 'class="badge verdict-not_recorded"' in text  # (the rest still tells it)
