"""The emulator's control API under `/_emulator/` (no auth): how tests and people inject
faults and latency, read the call and webhook logs, seed participants, play meetings, force a
recording's status and reset. The endpoints are listed in `router.emulator`'s docstring."""

from __future__ import annotations

import json
import random
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.emulator.config import DropSpec, MeetingScript, ParticipantSeed
from router.emulator.recordings import ApiProblem
from router.emulator.state import EMULATOR_APPS, EMULATOR_STATE, EmulatorState, Fault

_Model = TypeVar("_Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultBody(_Strict):
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    calls: list[str] | None = None
    meetings: list[str] | None = None
    retry_after: float | None = Field(default=None, ge=0)
    message: str = "Injected fault"
    probability: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None


class LatencyBody(_Strict):
    ms: float = Field(ge=0)
    calls: list[str] | None = None


class ParticipantsBody(_Strict):
    participants: list[ParticipantSeed]


class StatusBody(_Strict):
    status: Literal["INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED", "ERRORED"]


class WebhookUrlBody(_Strict):
    url: str | None


def add_control_routes(app: web.Application) -> None:
    # The main app's at `/_emulator`, every app's at `/_emulator/apps/{app id}`.
    for prefix in ("/_emulator", "/_emulator/apps/{emulated_app}"):
        _add_control_routes(app, prefix)


def _add_control_routes(app: web.Application, prefix: str) -> None:
    r = app.router
    r.add_get(prefix, _info)
    r.add_get(prefix + "/calls", _calls)
    r.add_delete(prefix + "/calls", _clear_calls)
    r.add_get(prefix + "/faults", _faults)
    r.add_post(prefix + "/faults", _add_fault)
    r.add_delete(prefix + "/faults", _clear_faults)
    r.add_get(prefix + "/latency", _latency)
    r.add_put(prefix + "/latency", _set_latency)
    r.add_get(prefix + "/meetings", _meetings)
    r.add_post(prefix + "/meetings/play", _play)
    r.add_post(prefix + "/meetings/{meeting_id}/participants", _add_participants)
    r.add_get(prefix + "/recordings", _recordings)
    r.add_post(prefix + "/recordings/{recording_id}/status", _force_status)
    r.add_get(prefix + "/webhooks", _webhooks)
    r.add_put(prefix + "/webhooks/url", _set_webhook_url)
    r.add_get(prefix + "/webhooks/drops", _drops)
    r.add_post(prefix + "/webhooks/drops", _add_drop)
    r.add_delete(prefix + "/webhooks/drops", _clear_drops)
    r.add_post(prefix + "/reset", _reset)


def _state(request: web.Request) -> EmulatorState:
    app_id = request.match_info.get("emulated_app")
    if app_id is None:
        return request.app[EMULATOR_STATE]
    state = request.app[EMULATOR_APPS].get(app_id)
    if state is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no app {app_id}"}), content_type="application/json"
        )
    return state


async def _parse(request: web.Request, model: type[_Model]) -> _Model:
    try:
        return model.model_validate_json(await request.read())
    except web.HTTPRequestEntityTooLarge:
        problem = f"body: larger than {request.client_max_size} bytes"
        raise web.HTTPRequestEntityTooLarge(
            request.client_max_size,
            request.content_length or 0,
            text=json.dumps({"error": problem}),
            content_type="application/json",
        ) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise web.HTTPBadRequest(
            text=json.dumps({"error": problems}), content_type="application/json"
        ) from None


async def _info(request: web.Request) -> web.Response:
    config = _state(request).config
    return web.json_response(
        {
            "account_id": config.account_id,
            "app_id": config.app_id,
            "webhook_id": config.webhook_id,
            "webhook_url": _state(request).sender.url,
            "organization_id": config.organization_id,
        }
    )


async def _calls(request: web.Request) -> web.Response:
    return web.json_response([c.as_json() for c in _state(request).calls])


async def _clear_calls(request: web.Request) -> web.Response:
    _state(request).calls.clear()
    return web.json_response({"cleared": True})


async def _faults(request: web.Request) -> web.Response:
    return web.json_response([f.as_json() for f in _state(request).faults])


async def _add_fault(request: web.Request) -> web.Response:
    body = await _parse(request, FaultBody)
    fault = Fault(
        status=body.status,
        remaining=body.count,
        calls=frozenset(body.calls) if body.calls is not None else None,
        meetings=frozenset(body.meetings) if body.meetings is not None else None,
        retry_after=body.retry_after,
        message=body.message,
        probability=body.probability,
        rng=random.Random(body.seed),  # noqa: S311 - chance, not secrecy
    )
    _state(request).faults.append(fault)
    return web.json_response(fault.as_json(), status=201)


async def _clear_faults(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return web.json_response({"cleared": True})


async def _latency(request: web.Request) -> web.Response:
    state = _state(request)
    calls = sorted(state.latency_calls) if state.latency_calls is not None else None
    return web.json_response({"ms": state.latency_ms, "calls": calls})


async def _set_latency(request: web.Request) -> web.Response:
    body = await _parse(request, LatencyBody)
    state = _state(request)
    state.latency_ms = body.ms
    state.latency_calls = frozenset(body.calls) if body.calls is not None else None
    return await _latency(request)


async def _meetings(request: web.Request) -> web.Response:
    meetings = _state(request).meetings.meetings.values()
    return web.json_response([m.as_json() for m in meetings])


async def _play(request: web.Request) -> web.Response:
    script = await _parse(request, MeetingScript)
    _state(request).play(script)
    return web.json_response({"meeting_id": script.meeting_id}, status=202)


async def _add_participants(request: web.Request) -> web.Response:
    body = await _parse(request, ParticipantsBody)
    state = _state(request)
    meeting_id = request.match_info["meeting_id"]
    state.meetings.add_participants(meeting_id, body.participants)
    return web.json_response(state.meetings.get(meeting_id).as_json())


async def _recordings(request: web.Request) -> web.Response:
    wanted = request.query.get("meeting_id")
    recordings = _state(request).recordings.recordings.values()
    found = [r.as_json() for r in recordings if wanted is None or r.meeting_id == wanted]
    return web.json_response(found)


async def _force_status(request: web.Request) -> web.Response:
    body = await _parse(request, StatusBody)
    try:
        recording = _state(request).recordings.force(
            request.match_info["recording_id"], body.status
        )
    except ApiProblem as problem:
        return web.json_response({"error": problem.message}, status=problem.status)
    return web.json_response(recording.as_json())


async def _webhooks(request: web.Request) -> web.Response:
    return web.json_response([d.as_json() for d in _state(request).sender.deliveries])


async def _set_webhook_url(request: web.Request) -> web.Response:
    body = await _parse(request, WebhookUrlBody)
    _state(request).sender.url = body.url
    return web.json_response({"url": body.url})


async def _drops(request: web.Request) -> web.Response:
    return web.json_response([d.as_json() for d in _state(request).sender.drops])


async def _add_drop(request: web.Request) -> web.Response:
    spec = await _parse(request, DropSpec)
    return web.json_response(_state(request).drop(spec).as_json(), status=201)


async def _clear_drops(request: web.Request) -> web.Response:
    _state(request).sender.drops.clear()
    return web.json_response({"cleared": True})


async def _reset(request: web.Request) -> web.Response:
    await _state(request).reset()
    return web.json_response({"reset": True})
