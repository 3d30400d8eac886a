"""The emulator's RTK REST API: the recording and participant calls the router makes, with
RTK's envelopes, at the root and under `/client/v4`.

Each call passes the same gate: injected latency, then an injected fault, then the bearer
token (401) and the account and app ids (404), then the call itself; every answer is logged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router import clock
from router.emulator.recordings import ApiProblem
from router.emulator.state import EMULATOR_APPS, EMULATOR_STATE, CallRecord, EmulatorState

API_PREFIXES = ("", "/client/v4")
_MAX_PER_PAGE = 100


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _ok(data: Any, status: int = 200, **more: Any) -> _Reply:
    return _Reply(status, {"success": True, "data": data, **more})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    body = {"success": False, "error": {"code": status, "message": message}}
    return _Reply(status, body, headers or {})


Call = Callable[[web.Request, EmulatorState, Any], Awaitable[_Reply]]
Namer = Callable[[Any], str]


def add_api_routes(app: web.Application) -> None:
    for prefix in API_PREFIXES:
        base = prefix + "/accounts/{account_id}/realtime/kit/{app_id}"
        app.router.add_post(base + "/recordings", _gate("start_recording", _start))
        app.router.add_get(
            base + "/recordings/active-recording/{meeting_id}",
            _gate("active_recording", _active),
        )
        app.router.add_get(base + "/recordings/{recording_id}", _gate("get_recording", _get))
        app.router.add_put(base + "/recordings/{recording_id}", _gate(_action_name, _act))
        app.router.add_get(
            base + "/meetings/{meeting_id}/participants", _gate("participants", _participants)
        )
        app.router.add_get(
            base + "/meetings/{meeting_id}/active-session", _gate("active_session", _session)
        )


def _action_name(body: Any) -> str:
    action = body.get("action") if isinstance(body, dict) else None
    return f"{action}_recording" if action in ("stop", "pause", "resume") else "update_recording"


def _gate(name: str | Namer, handler: Call) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def gated(request: web.Request) -> web.Response:
        # Routed by app id, as RTK does; an unknown one meets the main app's 404.
        state = request.app[EMULATOR_APPS].get(
            request.match_info["app_id"], request.app[EMULATOR_STATE]
        )
        arrived = clock.monotonic()
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            refusal = _error(413, f"Request body larger than {request.client_max_size} bytes")
            return web.json_response(refusal.body, status=refusal.status)
        try:
            body, readable = (json.loads(raw) if raw else None), True
        except ValueError:
            body, readable = None, False
        call = name if isinstance(name, str) else name(body)
        meeting_id = body.get("meeting_id") if isinstance(body, dict) else None
        about = meeting_id if isinstance(meeting_id, str) else request.match_info.get("meeting_id")
        delay = state.latency_for(call)
        if delay > 0:
            await asyncio.sleep(delay)
        reply = _check(request, state, call, about)
        if reply is None and not readable:
            reply = _error(400, "Request body is not valid JSON")
        if reply is None:
            try:
                reply = await handler(request, state, body)
            except ApiProblem as problem:
                reply = _error(problem.status, problem.message)
        state.calls.append(
            CallRecord(
                request.method,
                request.path,
                call,
                reply.status,
                arrived,
                meeting_id if call == "start_recording" and isinstance(meeting_id, str) else None,
            )
        )
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    return gated


def _check(
    request: web.Request, state: EmulatorState, call: str, meeting_id: str | None
) -> _Reply | None:
    fault = state.take_fault(call, meeting_id)
    if fault is not None:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return _error(fault.status, fault.message, headers)
    expected = f"Bearer {state.config.api_token}".encode()
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        return _error(401, "Unauthorized: missing or invalid API token")
    info = request.match_info
    if info["account_id"] != state.config.account_id or info["app_id"] != state.config.app_id:
        return _error(404, "Account or app not found")
    return None


async def _start(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    if not isinstance(body, dict):
        raise ApiProblem(400, "Request body must be a JSON object")
    return _ok(state.recordings.start(body).rest(), status=201)


async def _active(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    recording = state.recordings.active(request.match_info["meeting_id"])
    if recording is None:
        raise ApiProblem(404, "No active recording found for this meeting")
    return _ok(recording.rest())


async def _get(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    return _ok(state.recordings.get(request.match_info["recording_id"]).rest())


async def _act(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    action = body.get("action") if isinstance(body, dict) else None
    return _ok(state.recordings.act(request.match_info["recording_id"], action).rest())


async def _session(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    session = state.meetings.active_session(request.match_info["meeting_id"])
    if session is None:
        raise ApiProblem(404, "No active session found for this meeting")
    return _ok(session)


async def _participants(request: web.Request, state: EmulatorState, body: Any) -> _Reply:
    page_no = _positive_int(request.query.get("page_no"), 1, "page_no")
    per_page = _positive_int(request.query.get("per_page"), 20, "per_page")
    if per_page > _MAX_PER_PAGE:
        raise ApiProblem(400, f"per_page must be at most {_MAX_PER_PAGE}")
    rows, total = state.meetings.page(request.match_info["meeting_id"], page_no, per_page)
    start = (page_no - 1) * per_page
    paging = {"total_count": total, "start_offset": start, "end_offset": start + len(rows)}
    return _ok(rows, paging=paging)


def _positive_int(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiProblem(400, f"{name} must be an integer") from None
    if number < 1:
        raise ApiProblem(400, f"{name} must be at least 1")
    return number
