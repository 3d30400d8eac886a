"""Faults under load, end to end: the broker restarted under steady webhook traffic, the router
killed with SIGKILL while meetings join, and RTK failing 30% of its API calls.

The routers here are `router serve` processes (they are killed for real) or in-process apps;
the broker is the test's own, so it outlives every router; RTK is the emulator."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from router.emulator import EmulatorConfig, EmulatorState
from router.emulator.state import Fault
from tests.plugins.e2e import ChildRouter, Loop, eventually, wire
from tests.plugins.traffic import Traffic, restart_broker_under, start_at

pytestmark = pytest.mark.slow


async def start_wired(loop: Loop) -> ChildRouter:
    """A `router serve` process, ready, with the emulator's webhooks pointed at it."""
    router = await loop.start_process()
    await router.wait_ready(loop.http)
    await wire(loop, router)
    return router


# 1. The broker stopped and restarted under steady traffic.


async def test_broker_restart_under_traffic_loses_no_acknowledged_webhook(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """Every webhook is answered 200 or 503 (with Retry-After), nothing else, the router stays
    up, and traffic is accepted again after the restart. The broker keeps nothing in memory
    over a restart, so what can be checked is what the restarted broker acknowledged: every
    webhook sent after the old one was gone and answered 200 is on the log, byte for byte."""
    loop = await make_loop()
    router = await loop.start_process()
    await router.wait_ready(loop.http)
    traffic = Traffic(loop, router.url)
    gone = await restart_broker_under(traffic, before=20, after=100)

    statuses = {s.status for s in traffic.sent}
    assert statuses <= {200, 503}, statuses
    assert all(int(s.retry_after or 0) > 0 for s in traffic.answered(503))
    assert router.running
    async with loop.http.get(router.url + "/healthz") as response:
        assert response.status == 200

    acknowledged = {s.delivery_id: s.body for s in traffic.answered(200, since=gone)}
    logged: dict[str, bytes | None] = {}
    for record in await loop.topic("webhooks", expect=len(acknowledged), timeout=30):
        headers = dict(record.headers)
        logged[headers["rtk-uuid"].decode()] = record.value
    missing = [d for d in acknowledged if d not in logged]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged webhooks lost"
    assert all(logged[d] == body for d, body in acknowledged.items())
    sent = {s.delivery_id: s.body for s in traffic.sent}
    assert all(sent.get(d) == value for d, value in logged.items()), "the log holds a stranger"
    assert await router.terminate() == 0


# 2. The router killed with SIGKILL while meetings join, and restarted.

MEETINGS_JOINING = [f"m-kill-{n}" for n in range(12)]
JOINS_EACH = 4


async def test_sigkill_during_joins_starts_no_duplicate_and_loses_no_decision(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """Twelve meetings with four joins each, a policy starting a recording at the second join,
    and the router killed once starts are under way. RTK retries the deliveries that find no
    router; the restarted one replays what was not committed. Each meeting is recorded at most
    once, and every join answered 200 has its decision."""
    loop = await make_loop(
        # RTK's retries of one delivery span about 25 s here, past the restart.
        emulator_options={"webhook_attempts": 9, "webhook_backoff": 0.1},
        policy=start_at(2),
    )
    first = await start_wired(loop)
    for n, meeting_id in enumerate(MEETINGS_JOINING):
        steps = [
            {"at": n * 0.15 + k * 0.5, "action": "join", "participant": f"user-{k}"}
            for k in range(JOINS_EACH)
        ]
        await loop.play({"meeting_id": meeting_id, "end_when_empty": False, "steps": steps})
    await eventually(lambda: _at_least_starts(loop, 2), timeout=30, interval=0.02)
    await first.kill()
    second = await start_wired(loop)

    state = loop.emulator.state
    await asyncio.wait_for(state.plays_done(), 30)
    await asyncio.wait_for(state.sender.drain(), 60)
    answered = {
        d.delivery_id
        for d in state.sender.deliveries
        if d.event == "meeting.participantJoined" and d.status == 200
    }
    decisions = await eventually(lambda: _decided(loop, answered), timeout=45)

    for meeting_id in MEETINGS_JOINING:
        assert len(await loop.starts(meeting_id)) <= 1, meeting_id
        recordings = await loop.recordings(meeting_id)
        assert len(recordings) <= 1, meeting_id
        mine = [d for d in decisions if d["meeting_id"] == meeting_id]
        assert "failed" not in {d["outcome"] for d in mine}, mine
        recorded = [d for d in mine if d["outcome"] in ("started", "already_recording")]
        if recorded:
            assert len(recordings) == 1, meeting_id
            assert {d["recording_id"] for d in recorded} == {recordings[0]["id"]}
    assert await second.terminate() == 0


async def _at_least_starts(loop: Loop, count: int) -> bool:
    return len(await loop.starts()) >= count


async def _decided(loop: Loop, joins: set[str]) -> list[dict[str, Any]] | None:
    """Every decision on the topic, once each of `joins` (delivery ids) has one."""
    decisions = [json.loads(r.value or b"{}") for r in await loop.topic("decisions", timeout=5)]
    return decisions if {d["delivery_id"] for d in decisions} >= joins else None


# 3. RTK failing 30% of its API calls.

MEETINGS_RECORDED = [f"m-flaky-{n}" for n in range(15)]
HOSTS = ("ann", "bob", "cid")
FLAKY = 0.30


def flaky_faults() -> list[dict[str, Any]]:
    """500 for 15% of calls, then 429 for 15% of the rest... together 30% of all calls."""
    half = FLAKY / 2
    return [
        {"status": 500, "probability": half, "count": 100_000, "seed": 1},
        {
            "status": 429,
            "probability": half / (1 - half),
            "count": 100_000,
            "seed": 2,
            "retry_after": 0.1,
        },
    ]


async def test_every_eligible_meeting_is_recorded_once_while_rtk_fails_30_percent(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """Fifteen meetings of three hosts, recorded from the second host's join: the preset
    look-ups, active-recording checks and starts all meet 500s and 429s, are retried, and each
    meeting ends with exactly one recording and one `started` decision."""
    loop = await make_loop(policy=start_at(2, preset=True))
    router = await loop.start_router()
    await wire(loop, router)
    for meeting_id in MEETINGS_RECORDED:
        people = [{"custom_participant_id": h, "preset_name": "host"} for h in HOSTS]
        await loop.control("POST", f"/meetings/{meeting_id}/participants", {"participants": people})
    for fault in flaky_faults():
        await loop.control("POST", "/faults", fault)

    for n, meeting_id in enumerate(MEETINGS_RECORDED):
        steps = [
            {"at": n * 0.05 + k * 0.3, "action": "join", "participant": host}
            for k, host in enumerate(HOSTS)
        ]
        await loop.play({"meeting_id": meeting_id, "end_when_empty": False, "steps": steps})
    expected = len(MEETINGS_RECORDED) * len(HOSTS)
    decisions = await eventually(lambda: _decisions_at_least(loop, expected), timeout=60)

    for meeting_id in MEETINGS_RECORDED:
        outcomes = sorted(d["outcome"] for d in decisions if d["meeting_id"] == meeting_id)
        assert outcomes == ["already_recording", "no_match", "started"], (meeting_id, outcomes)
        assert len(await loop.starts(meeting_id)) == 1, meeting_id
        assert len(await loop.recordings(meeting_id)) == 1, meeting_id
    failures = [c["status"] for c in await loop.calls() if c["status"] in (429, 500)]
    assert failures.count(500) >= 3, failures
    assert failures.count(429) >= 3, failures


async def _decisions_at_least(loop: Loop, count: int) -> list[dict[str, Any]] | None:
    decisions = [json.loads(r.value or b"{}") for r in await loop.topic("decisions", timeout=5)]
    return decisions if len(decisions) >= count else None


@pytest.mark.parametrize(
    ("probability", "count", "least", "most"),
    [(1.0, 10_000, 1000, 1000), (0.3, 10_000, 250, 350), (0.3, 5, 5, 5)],
    ids=["always", "thirty-percent", "count-caps-the-failures"],
)
def test_probabilistic_fault_fails_its_share_of_calls(
    emulator_key_pem: bytes, probability: float, count: int, least: int, most: int
) -> None:
    """The emulator's `probability` option fails about that share of matching calls, and
    `count` bounds how many it fails in all."""
    state = EmulatorState(EmulatorConfig(private_key_pem=emulator_key_pem))
    state.faults.append(Fault(500, remaining=count, probability=probability, rng=random.Random(7)))

    failed = sum(state.take_fault("start_recording") is not None for _ in range(1000))

    assert least <= failed <= most
