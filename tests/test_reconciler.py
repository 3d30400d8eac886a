"""The reconciler's shell: answers not of the documented shape refused by the client and
counted without a change, a 429 pausing every call, findings dropped when the meeting moved on,
and nothing asked about a meeting the worker holds no state for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from router.config import KafkaConfig, ReconcileConfig
from router.core.meeting_state import MeetingState
from router.errors import RtkApiError
from router.metrics import Metrics
from router.realtimekit import RtkClient
from router.worker.reconcile import Reconciler
from router.worker.states import MeetingStates
from tests.fake_rtk import FakeRtk

MEETING = "m-1"
LIVE = MeetingState(MEETING, session_id="s-1", peers={"p-1": None})


@pytest.mark.parametrize(
    "data",
    [
        {"id": "s-1", "live_participants": "2", "status": "LIVE"},
        {"id": "s-1", "live_participants": -1, "status": "LIVE"},
        {"id": "s-1", "live_participants": True, "status": "LIVE"},
        {"id": "s-1", "live_participants": 2, "status": "SLEEPING"},
        {"live_participants": 2, "status": "LIVE"},
        ["s-1"],
        None,
    ],
    ids=["count-text", "negative", "bool", "status", "no-id", "list", "no-data"],
)
async def test_a_session_answer_not_of_the_documented_shape_is_an_error(
    aiohttp_server: AiohttpServer, data: Any
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": data})

    app = web.Application()
    app.router.add_get("/accounts/a/realtime/kit/b/meetings/{m}/active-session", answer)
    app.router.add_get("/accounts/a/realtime/kit/b/recordings/{r}", answer)
    server = await aiohttp_server(app)
    async with RtkClient(
        base_url=str(server.make_url("")), account_id="a", app_id="b", api_token="t"
    ) as client:
        with pytest.raises(RtkApiError) as session:
            await client.active_session(MEETING)
        if not isinstance(data, dict) or "id" not in data:
            with pytest.raises(RtkApiError) as recording:
                await client.get_recording("rec-1")
            assert recording.value.status == 200

    assert (session.value.status, session.value.retriable) == (200, False)
    assert "live_participants" in str(session.value)


@pytest.fixture
async def states() -> MeetingStates:
    held = MeetingStates(KafkaConfig(), "unused:9092", Metrics())
    held.put(MEETING, 0, LIVE)
    return held


class Running:
    def __init__(self, reconciler: Reconciler, metrics: Metrics) -> None:
        self.reconciler = reconciler
        self.metrics = metrics

    def count(self, check: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "router_reconcile_total", {"check": check, "outcome": outcome}
        )
        return value or 0.0

    async def until(self, check: str, outcome: str, times: int = 1) -> None:
        async with asyncio.timeout(10):
            while self.count(check, outcome) < times:
                await asyncio.sleep(0.01)


@pytest.fixture
async def start(states: MeetingStates) -> AsyncIterator[Any]:
    running: list[Reconciler] = []

    def make(rtk: FakeRtk, interval: float = 0.1) -> Running:
        metrics = Metrics()
        config = ReconcileConfig(interval_seconds=interval, max_calls_per_minute=6000)
        reconciler = Reconciler(config, rtk, states, metrics, owned=lambda: {0})
        reconciler.start()
        running.append(reconciler)
        return Running(reconciler, metrics)

    yield make
    for reconciler in running:
        await reconciler.stop()


async def test_a_malformed_answer_is_counted_and_changes_nothing(
    start: Any, states: MeetingStates
) -> None:
    rtk = FakeRtk(malformed={"active_session"})
    rtk.go_live(MEETING, "s-1", 3)

    running = start(rtk)
    await running.until("session", "invalid", times=2)

    assert running.reconciler.take(busy=(), owned={0}) == []
    assert states.get(MEETING) is LIVE
    assert await running.reconciler.ready() is None


async def test_a_difference_is_handed_over_only_while_the_meeting_is_as_it_was(
    start: Any, states: MeetingStates
) -> None:
    rtk = FakeRtk()
    rtk.go_live(MEETING, "s-1", 3)
    running = start(rtk, interval=0.05)
    await running.until("session", "count", times=2)

    taken = running.reconciler.take(busy=(), owned={0})
    await running.until("session", "count", times=3)
    states.put(MEETING, 0, LIVE.joined("p-2"))  # an event of the meeting came first
    stale = running.reconciler.take(busy=(), owned={0})

    assert len(taken) >= 1
    assert taken[0].logged.delivery_id.startswith(f"reconcile:{MEETING}:")
    assert taken[0].partition == 0
    assert stale == []
    assert running.count("session", "stale") >= 1


async def test_a_finding_of_a_waiting_or_moved_meeting_is_dropped(start: Any) -> None:
    rtk = FakeRtk()
    rtk.go_live(MEETING, "s-1", 3)
    running = start(rtk, interval=0.05)
    await running.until("session", "count", times=2)

    assert running.reconciler.take(busy={MEETING}, owned={0}) == []
    await running.until("session", "count", times=4)
    assert running.reconciler.take(busy=(), owned={1}) == []


async def test_a_429_pauses_every_call(start: Any) -> None:
    rtk = FakeRtk()
    rtk.fail("active_session", 429, count=1_000, retry_after=30)

    running = start(rtk, interval=0.05)
    await running.until("session", "rate_limited")
    await asyncio.sleep(0.5)  # ten rounds' time

    assert rtk.calls.count("active_session") == 1


async def test_no_state_no_question(start: Any, states: MeetingStates) -> None:
    states.forget(MEETING)
    states.put("m-over", 0, MeetingState("m-over", session_id="s-9", past_sessions=("s-9",)))
    rtk = FakeRtk()

    start(rtk, interval=0.05)
    await asyncio.sleep(0.3)

    assert rtk.calls == []


async def test_off_when_the_interval_is_0(states: MeetingStates) -> None:
    rtk = FakeRtk()
    config = ReconcileConfig(interval_seconds=0)
    reconciler = Reconciler(config, rtk, states, Metrics(), owned=lambda: {0})

    reconciler.start()
    await asyncio.sleep(0.2)
    await reconciler.stop()

    assert rtk.calls == []
