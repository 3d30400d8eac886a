"""The RTK REST client against the emulator over real HTTP: each call, retries and their
budget, the rate limit, the preset cache, metrics, and secrets kept out of errors and logs."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from router.errors import RtkApiError
from router.metrics import Metrics
from router.realtimekit import RtkClient, RtkParticipant, RtkRecording
from tests.plugins.emulator import Control, FakeTime, MakeClient, StartEmulator


def count(metrics: Metrics, call: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "router_rtk_api_calls_total", {"call": call, "outcome": outcome}
    )
    return value or 0.0


async def seed(control: Control, meeting_id: str, rows: list[tuple[str, str]]) -> None:
    participants = [
        {"custom_participant_id": cid, "preset_name": preset, "name": cid} for cid, preset in rows
    ]
    status, _ = await control.request(
        "POST", f"/meetings/{meeting_id}/participants", {"participants": participants}
    )
    assert status == 200


async def fault(control: Control, **spec: Any) -> None:
    status, _ = await control.request("POST", "/faults", spec)
    assert status == 201


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("prefix", ["", "/client/v4"], ids=["root", "client-v4"])
async def test_active_recording_is_none_until_a_start(
    control: Control, make_client: MakeClient, prefix: str
) -> None:
    emulator = control.emulator
    client = make_client(emulator, base_url=emulator.base_url + prefix)

    assert await client.active_recording("m-1") is None
    started = await client.start_recording("m-1", {})
    active = await client.active_recording("m-1")

    assert started.status == "INVOKED"
    assert started.meeting_id == "m-1"
    assert active is not None
    assert active.id == started.id
    assert [c["status"] for c in await control.calls()] == [404, 201, 200]


async def test_start_sends_the_rule_fields_and_hides_storage_secrets(
    control: Control, make_client: MakeClient
) -> None:
    client = make_client(control.emulator)
    params = {
        "file_name_prefix": "board-m-2",
        "max_seconds": 3600,
        "storage_config": {"type": "aws", "bucket": "b", "secret": "s3cr3t", "access_key": "AK"},
        "meeting_id": "ignored",
    }

    recording = await client.start_recording("m-2", params)

    _, listed = await control.request("GET", "/recordings?meeting_id=m-2")
    assert [r["id"] for r in listed] == [recording.id]
    assert listed[0]["params"] == {
        "meeting_id": "m-2",
        "file_name_prefix": "board-m-2",
        "max_seconds": 3600,
        "storage_config": {"type": "aws", "bucket": "b", "secret": "***", "access_key": "***"},
    }
    assert listed[0]["output_file_name"].startswith("board-m-2_")


@pytest.mark.parametrize(
    ("second", "conflicts"),
    [({}, True), ({"allow_multiple_recordings": True}, False)],
    ids=["second-start-conflicts", "allow-multiple-recordings"],
)
async def test_one_active_recording_per_meeting(
    control: Control, make_client: MakeClient, second: dict[str, Any], conflicts: bool
) -> None:
    client = make_client(control.emulator)
    first = await client.start_recording("m-3", {})

    if conflicts:
        with pytest.raises(RtkApiError) as caught:
            await client.start_recording("m-3", second)
        assert caught.value.status == 409
        assert caught.value.retriable is False
    else:
        another = await client.start_recording("m-3", second)
        assert another.id != first.id
    assert len([c for c in await control.calls() if c["call"] == "start_recording"]) == 2


async def test_stop_recording_and_an_unknown_one(control: Control, make_client: MakeClient) -> None:
    client = make_client(control.emulator)
    recording = await client.start_recording("m-4", {})

    stopped = await client.stop_recording(recording.id)
    missing = await client.stop_recording("no-such-recording")

    assert stopped == RtkRecording(recording.id, "UPLOADING", None, recording.session_id)
    assert missing is None
    assert await client.active_recording("m-4") is None
    assert [c["status"] for c in await control.calls()][1:3] == [200, 404]


async def test_a_wrong_token_is_refused_at_once(
    control: Control, make_client: MakeClient, fake_time: FakeTime
) -> None:
    metrics = Metrics()
    client = make_client(control.emulator, api_token="not-the-token", metrics=metrics)

    with pytest.raises(RtkApiError) as caught:
        await client.active_recording("m-5")

    assert caught.value.status == 401
    assert caught.value.retriable is False
    assert fake_time.waits == []
    assert count(metrics, "active_recording", "unauthorized") == 1


async def test_participants_are_read_page_by_page(
    control: Control, make_client: MakeClient
) -> None:
    rows = [(f"user-{i:03}", "host" if i % 10 == 0 else "guest") for i in range(250)]
    await seed(control, "m-6", rows)
    client = make_client(control.emulator)

    participants = await client.participants("m-6")

    assert len(participants) == 250
    assert participants[0] == RtkParticipant("user-000", "host", "user-000")
    assert {p.custom_participant_id for p in participants} == {cid for cid, _ in rows}
    pages = [c["path"] for c in await control.calls()]
    assert len(pages) == 3
    assert await client.participants("m-unknown") == []


async def test_presets_are_cached_and_misses_wait_for_the_next_refetch(
    control: Control, make_client: MakeClient, fake_time: FakeTime
) -> None:
    await seed(control, "m-7", [("ann", "host"), ("bob", "guest")])
    client = make_client(control.emulator)

    async def lookups() -> int:
        return len([c for c in await control.calls() if c["call"] == "participants"])

    assert await client.preset_of("m-7", "ann") == "host"
    assert await client.preset_of("m-7", "bob") == "guest"
    assert await lookups() == 1  # the second lookup came from the cache

    await seed(control, "m-7", [("cat", "board")])
    fake_time.waits.clear()
    # A miss right after a listing waits out the 5 s window, then lists again: one listing
    # per window at most, and a participant added meanwhile is still found.
    assert await client.preset_of("m-7", "cat") == "board"
    assert await lookups() == 2
    assert sum(fake_time.waits) == pytest.approx(5, abs=0.01)

    fake_time.now += 5
    assert await client.preset_of("m-7", "dan") is None  # a later miss lists at once
    assert await lookups() == 3

    client.forget_meeting("m-7")
    assert await client.preset_of("m-7", "ann") == "host"
    assert await lookups() == 4


async def test_concurrent_misses_of_one_meeting_share_one_fetch(
    control: Control, make_client: MakeClient
) -> None:
    await seed(control, "m-16", [("ann", "host"), ("bob", "guest")])
    await control.request("PUT", "/latency", {"ms": 50, "calls": ["participants"]})
    client = make_client(control.emulator)

    presets = await asyncio.gather(
        client.preset_of("m-16", "ann"),
        client.preset_of("m-16", "bob"),
        client.preset_of("m-17", "ann"),
    )

    assert list(presets) == ["host", "guest", None]
    assert sorted(c["path"].split("/")[-2] for c in await control.calls()) == ["m-16", "m-17"]


async def test_500_then_429_then_success_starts_exactly_one_recording(
    control: Control, make_client: MakeClient, fake_time: FakeTime
) -> None:
    await fault(control, status=500, count=1, calls=["start_recording"])
    await fault(control, status=429, count=1, calls=["start_recording"], retry_after=7)
    metrics = Metrics()
    client = make_client(control.emulator, metrics=metrics)

    recording = await client.start_recording("m-8", {})

    _, listed = await control.request("GET", "/recordings")
    assert [r["id"] for r in listed] == [recording.id]
    assert [c["status"] for c in await control.calls()] == [500, 429, 201]
    assert len(fake_time.waits) == 2
    assert fake_time.waits[1] >= 7  # Retry-After is a floor
    for outcome in ("server_error", "rate_limited", "ok"):
        assert count(metrics, "start_recording", outcome) == 1


async def test_a_spent_budget_raises_a_retriable_error(
    control: Control, make_client: MakeClient, fake_time: FakeTime
) -> None:
    await fault(control, status=503, count=10_000, calls=["active_recording"])
    client = make_client(control.emulator, retry_seconds=60, rng=random.Random(7))
    started = fake_time.now

    with pytest.raises(RtkApiError) as caught:
        await client.active_recording("m-9")

    assert caught.value.status == 503
    assert caught.value.retriable is True
    assert fake_time.now - started <= 60
    assert max(fake_time.waits) <= 30  # the backoff cap
    assert len(await control.calls()) == len(fake_time.waits) + 1


async def test_a_retry_after_beyond_the_budget_gives_up_at_once(
    control: Control, make_client: MakeClient, fake_time: FakeTime
) -> None:
    await fault(control, status=429, count=5, retry_after=120)
    client = make_client(control.emulator, retry_seconds=60)

    with pytest.raises(RtkApiError) as caught:
        await client.stop_recording("r-1")

    assert (caught.value.status, caught.value.retriable, caught.value.retry_after) == (
        429,
        True,
        120,
    )
    assert fake_time.waits == []


@pytest.mark.parametrize(
    ("status", "call"),
    [
        (400, "start_recording"),
        (403, "start_recording"),
        (404, "start_recording"),
        (422, "start_recording"),
        (401, "participants"),
        (400, "stop_recording"),
    ],
    ids=["400-start", "403-start", "404-start", "422-start", "401-participants", "400-stop"],
)
async def test_other_client_errors_are_not_retried(
    control: Control, make_client: MakeClient, fake_time: FakeTime, status: int, call: str
) -> None:
    await fault(control, status=status, count=3, calls=[call], message="no good")
    client = make_client(control.emulator)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "start_recording": lambda: client.start_recording("m-10", {}),
        "participants": lambda: client.participants("m-10"),
        "stop_recording": lambda: client.stop_recording("r-10"),
    }

    with pytest.raises(RtkApiError) as caught:
        await attempts[call]()

    assert (caught.value.status, caught.value.retriable) == (status, False)
    assert f"HTTP {status}: no good" in str(caught.value)
    assert len(await control.calls()) == 1
    assert fake_time.waits == []


async def test_timeouts_are_retried_until_the_budget_is_spent(
    control: Control, make_client: MakeClient
) -> None:
    status, _ = await control.request("PUT", "/latency", {"ms": 300})
    assert status == 200
    metrics = Metrics()
    client = make_client(
        control.emulator,
        request_timeout=0.05,
        retry_seconds=2,
        metrics=metrics,
        rng=random.Random(3),
    )

    with pytest.raises(RtkApiError) as caught:
        await client.active_recording("m-11")

    assert (caught.value.status, caught.value.retriable) == (None, True)
    assert "timeout" in str(caught.value)
    assert count(metrics, "active_recording", "timeout") >= 2


async def test_connection_errors_are_retried(make_client: MakeClient, control: Control) -> None:
    metrics = Metrics()
    client = make_client(
        control.emulator,
        base_url=f"http://127.0.0.1:{free_port()}",
        retry_seconds=5,
        metrics=metrics,
    )

    with pytest.raises(RtkApiError) as caught:
        await client.participants("m-12")

    assert (caught.value.status, caught.value.retriable) == (None, True)
    assert count(metrics, "participants", "connection_error") >= 2


async def test_secrets_never_show_in_errors_reprs_or_logs(
    start_emulator: StartEmulator,
    make_client: MakeClient,
    http: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "tok-SECRET-4711"
    emulator = await start_emulator(api_token=token)
    control = Control(http, emulator)
    # RTK's message echoes the token: the client must not pass it on.
    await fault(control, status=500, count=1, message=f"bad {token}")
    await fault(control, status=400, count=1, message=f"rejected {token}")
    storage = {"type": "aws", "secret": "s3cr3t-KEY", "access_key": "AKIA-SECRET"}
    caplog.set_level(logging.DEBUG)
    client = make_client(emulator)
    wrong = make_client(emulator, api_token="tok-WRONG-0815")

    errors = []
    for attempt in (
        client.start_recording("m-13", {"storage_config": storage}),
        wrong.start_recording("m-13", {"storage_config": storage}),
    ):
        with pytest.raises(RtkApiError) as caught:
            await attempt
        errors.append(caught.value)

    shown = " ".join([*map(str, errors), *map(repr, errors), repr(client), caplog.text])
    assert "***" in str(errors[0])
    for secret in (token, "tok-WRONG-0815", "s3cr3t-KEY", "AKIA-SECRET", "Bearer"):
        assert secret not in shown


ECHOED_TOKEN = "tok-ECHOED-5150"


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("storage_config.secret 's3cr3t-KEY' is invalid", id="storage-secret"),
        pytest.param("unknown access_key AKIA-SECRET", id="access-key"),
        pytest.param("rtmp_url rtmp://live.example/app/STREAM-KEY-7 refused", id="rtmp-url"),
        # Cut to the limit first, the token would be shortened past recognition and leak.
        pytest.param("x" * 100 + f" Bearer {ECHOED_TOKEN}", id="token-at-the-cut"),
    ],
)
async def test_an_error_message_echoing_a_credential_of_the_request_is_redacted(
    start_emulator: StartEmulator, make_client: MakeClient, http: Any, message: str
) -> None:
    emulator = await start_emulator(api_token=ECHOED_TOKEN)
    await fault(Control(http, emulator), status=400, count=2, message=message)
    params = {
        "storage_config": {"type": "aws", "secret": "s3cr3t-KEY", "access_key": "AKIA-SECRET"},
        "rtmp_out_config": {"rtmp_url": "rtmp://live.example/app/STREAM-KEY-7"},
    }
    with pytest.raises(RtkApiError) as caught:
        await make_client(emulator).start_recording("m-14", params)
    shown = str(caught.value)
    assert "HTTP 400" in shown
    for secret in ("s3cr3t", "AKIA-SEC", "STREAM-KEY", ECHOED_TOKEN[:8]):
        assert secret not in shown


async def test_a_retrying_call_holds_up_no_other_meeting(
    control: Control, make_client: MakeClient
) -> None:
    release = asyncio.Event()
    waits: list[float] = []

    async def held_sleep(seconds: float) -> None:
        waits.append(seconds)
        await release.wait()

    await fault(control, status=500, count=1, calls=["start_recording"])
    client = make_client(control.emulator, sleep=held_sleep)
    start = asyncio.create_task(client.start_recording("m-a", {}))
    async with asyncio.timeout(5):
        while not waits:
            await asyncio.sleep(0.01)

    other = await asyncio.wait_for(client.active_recording("m-b"), timeout=2)

    assert other is None
    assert not start.done()
    release.set()
    assert (await start).meeting_id == "m-a"


async def test_the_rate_limit_spaces_recording_calls_only(
    control: Control, make_client: MakeClient
) -> None:
    client = make_client(control.emulator, rate_limit=(2, 1.0))

    began = time.monotonic()
    for _ in range(4):
        await client.participants("m-14")
    unlimited = time.monotonic() - began
    began = time.monotonic()
    for _ in range(4):
        await client.active_recording("m-14")
    limited = time.monotonic() - began

    assert unlimited < 0.5
    assert limited >= 0.8  # two at once, then one every half second


async def test_the_client_closes_its_session(control: Control) -> None:
    config = control.emulator.config
    async with RtkClient(
        base_url=control.emulator.base_url,
        account_id=config.account_id,
        app_id=config.app_id,
        api_token=config.api_token,
    ) as client:
        assert await client.active_recording("m-15") is None
    assert "emulator-token" not in repr(client)


async def test_an_oversized_answer_is_an_error_naming_the_limit(
    control: Control, make_client: MakeClient
) -> None:
    rows = [(f"user-{n}", "participant") for n in range(100)]
    await seed(control, "m-big", rows)
    metrics = Metrics()
    client = make_client(control.emulator, max_answer_bytes=2000, retry_seconds=5, metrics=metrics)

    with pytest.raises(RtkApiError) as caught:
        await client.participants("m-big")

    assert "the answer to participants is larger than max_answer_bytes (2000 bytes)" in str(
        caught.value
    )
    assert caught.value.retriable is True  # RTK may answer shorter next time: retried
    assert count(metrics, "participants", "too_large") >= 2
    # The same page is read whole under the default limit.
    assert len(await make_client(control.emulator).participants("m-big")) == 100


async def test_an_endless_answer_is_not_read_whole(
    aiohttp_server: Callable[..., Awaitable[Any]], make_client: MakeClient, control: Control
) -> None:
    """An RTK (or a proxy in front of it) streaming an answer without end: the client stops
    at the limit instead of holding it all in memory."""
    chunk = b"x" * 65_536

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(128):  # 8 MiB, far past the limit
                await response.write(chunk)
        except ConnectionError:
            pass  # the client left at its limit
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", endless)
    server = await aiohttp_server(app)
    metrics = Metrics()
    client = make_client(
        control.emulator,
        base_url=str(server.make_url("")).rstrip("/"),
        max_answer_bytes=256 * 1024,
        retry_seconds=1,
        metrics=metrics,
    )

    with pytest.raises(RtkApiError) as caught:
        await client.active_recording("m-endless")

    assert "max_answer_bytes (262144 bytes)" in str(caught.value)
    assert count(metrics, "active_recording", "too_large") >= 1
