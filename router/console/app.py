"""The console's aiohttp application: pages and their JSON, the static script and style, the
authentication of every path, and the task following the topics for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from importlib import resources

from aiohttp import web

from router.config import ConsoleConfig, Settings
from router.console import auth, pages
from router.console.live import LiveTopics
from router.console.view import MeetingView
from router.errors import DependencyError
from router.kafka import BROKER_ERRORS, reader_bootstrap

log = logging.getLogger("router.console")

LIVE: web.AppKey[LiveTopics] = web.AppKey("live", LiveTopics)
REFRESH_MS: web.AppKey[int] = web.AppKey("refresh_ms", int)

DEFAULT_LIMIT = 50
HTML = "text/html"
STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
}


def create_console_app(
    settings: Settings,
    *,
    require_auth: bool = True,
    refresh_ms: int = 2000,
    app_name: str | None = None,
) -> web.Application:
    """The console for the topics of `settings` (on the embedded broker of a running router
    when they say `embedded`); without `require_auth` (`--no-auth`) it asks for no
    credentials."""
    console = settings.console
    checker = None
    if require_auth:
        if not console.has_credentials:  # (empty ones would let `Basic Og==` in)
            raise ValueError("console.username and console.password are not set")
        checker = auth.BasicAuth(console.username, console.password.get_secret_value())
    app = web.Application(middlewares=[auth.middleware(checker)])
    app[LIVE] = LiveTopics(settings, reader_bootstrap(settings.kafka), app=app_name)
    app[REFRESH_MS] = refresh_ms
    app.cleanup_ctx.append(_following)
    files = resources.files("router.console") / "static"
    static = {name: (files / name).read_bytes() for name in STATIC}

    async def static_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in static:
            raise web.HTTPNotFound()
        return web.Response(body=static[name], content_type=STATIC[name], charset="utf-8")

    app.router.add_get("/", index)
    app.router.add_get("/meetings/{id}", meeting)
    app.router.add_get("/api/meetings", api_meetings)
    app.router.add_get("/api/meetings/{id}", api_meeting)
    app.router.add_get("/static/{name}", static_file)
    return app


async def _following(app: web.Application) -> AsyncIterator[None]:
    # The first reader is opened and has read the recent history before the console listens,
    # so that a missing topic or an unreachable broker ends the command with its reason, and
    # the first page shows what the topics hold rather than what was read so far.
    live = app[LIVE]
    try:
        first = await live.follower().__aenter__()
        try:
            async for batch in first.backlog():
                live.take(batch)
        except BaseException:
            await first.__aexit__(None, None, None)
            raise
    except LookupError as exc:  # (a topic does not exist)
        raise DependencyError(str(exc.args[0])) from None
    except BROKER_ERRORS as exc:
        raise DependencyError(f"cannot read the topics from {live.bootstrap}: {exc}") from None
    task = asyncio.ensure_future(live.follow(first))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type=HTML, charset="utf-8")


async def index(request: web.Request) -> web.StreamResponse:
    """`GET /`: recent meetings; `?q=ID` goes to that meeting's page."""
    query = request.query.get("q", "").strip()
    if query:
        raise web.HTTPFound(pages.meeting_url(query))
    live = request.app[LIVE]
    meetings = live.recent(DEFAULT_LIMIT)
    return _html(pages.index_page(meetings, _frame(request)))


async def meeting(request: web.Request) -> web.StreamResponse:
    """`GET /meetings/{id}`: one meeting's story."""
    meeting_id = request.match_info["id"]
    try:
        found = await request.app[LIVE].meeting(meeting_id)
    except DependencyError as exc:
        page = pages.unavailable_page(meeting_id, str(exc), _frame(request))
        return _html(page, status=503)
    if found is None:
        return _html(pages.not_found_page(meeting_id, _frame(request)), status=404)
    return _html(pages.meeting_page(found, _frame(request)))


def _frame(request: web.Request) -> pages.Frame:
    return pages.Frame(request.app[REFRESH_MS])


async def api_meetings(request: web.Request) -> web.StreamResponse:
    """`GET /api/meetings?limit=N`: the recent meetings as JSON."""
    live = request.app[LIVE]
    text = request.query.get("limit", str(min(DEFAULT_LIMIT, live.memory.max_meetings)))
    limit = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
    if not 1 <= limit <= live.memory.max_meetings:
        return web.json_response(
            {
                "error": "invalid_limit",
                "detail": f"limit must be a whole number from 1 to {live.memory.max_meetings}",
            },
            status=400,
        )
    return web.json_response({"meetings": [_summary(m) for m in live.recent(limit)]})


def _summary(meeting: MeetingView) -> dict[str, object]:
    return {
        "meeting_id": meeting.meeting_id,
        "title": meeting.title,
        "participants_present": meeting.present,
        "verdict": meeting.verdict,
        "recording_id": meeting.recording_id,
        "last_seen": meeting.last_time,
    }


async def api_meeting(request: web.Request) -> web.StreamResponse:
    """`GET /api/meetings/{id}`: the meeting's story as `router why --json` tells it."""
    meeting_id = request.match_info["id"]
    live = request.app[LIVE]
    try:
        found = await live.meeting(meeting_id)
    except DependencyError as exc:
        return web.json_response({"error": "unavailable", "detail": str(exc)}, status=503)
    if found is None:
        return web.json_response(
            {"error": "unknown_meeting", "detail": f"nothing is known of meeting {meeting_id}"},
            status=404,
        )
    return web.json_response(live.story_json(meeting_id))


def refusal(console: ConsoleConfig, *, host: str, no_auth: bool) -> str | None:
    """Why the console must not start with these credentials and this host, if it must not."""
    if no_auth and not auth.is_loopback(host):
        return (
            f"--no-auth serves the topics to anyone who can reach {host}; it is allowed only "
            "with a loopback --host (127.0.0.1, ::1, localhost)"
        )
    if not no_auth and not console.has_credentials:
        return (
            "console.username and console.password are not set; give them (as ${VAR}), "
            "or use --no-auth with a loopback --host"
        )
    return None


def run_console(
    settings: Settings, *, host: str, port: int, require_auth: bool, app: str | None = None
) -> None:
    """Serve the console until SIGTERM or SIGINT (with `app`, that app's meetings only)."""
    asyncio.run(_serve(settings, host, port, require_auth, app))


async def _serve(
    settings: Settings, host: str, port: int, require_auth: bool, app_name: str | None
) -> None:
    app = create_console_app(settings, require_auth=require_auth, app_name=app_name)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("console listening", extra={"host": host, "port": port, "auth": require_auth})
        await stop.wait()
    finally:
        await runner.cleanup()
