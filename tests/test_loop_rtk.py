"""End to end against an RTK that misbehaves or is ahead of us: failures retried into one
start, a recording already running, and a retry budget spent on one meeting while the others
are served."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tests.plugins.e2e import Loop, eventually, wire


def start_at(threshold: int, **settings: Any) -> dict[str, Any]:
    return {
        "rules": [
            {
                "name": f"{threshold}-or-more",
                "on": "meeting.participantJoined",
                "when": {"session.participants": {"gte": threshold}},
                "action": "start_recording",
                **settings,
            }
        ]
    }


def joins(meeting: str, *people: str) -> dict[str, Any]:
    steps = [{"at": 0.2 * i, "action": "join", "participant": p} for i, p in enumerate(people)]
    return {"meeting_id": meeting, "end_when_empty": False, "steps": steps}


async def test_500_then_429_with_retry_after_then_success_is_one_start(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=start_at(1))
    router = await loop.start_router()
    await wire(loop, router)
    for fault in ({"status": 500}, {"status": 429, "retry_after": 1}):
        await loop.control("POST", "/faults", {**fault, "count": 1, "calls": ["start_recording"]})

    await loop.play(joins("m-flaky", "ann"))
    [decision] = await loop.decisions("m-flaky", expect=1)
    assert decision["outcome"] == "started"
    assert decision["error"] is None
    attempts = await loop.calls("start_recording")
    assert [c["status"] for c in attempts] == [500, 429, 201]
    assert attempts[2]["at"] - attempts[1]["at"] >= 0.9  # Retry-After: 1 was honoured
    [recording] = await loop.recordings("m-flaky")
    assert decision["recording_id"] == recording["id"]
    # The recording the router started is published as INVOKED from the API's answer.
    first = json.loads((await loop.topic("recordings", expect=1))[0].value or b"{}")
    assert (first["recording_id"], first["status"], first["source"]) == (
        recording["id"],
        "INVOKED",
        "api",
    )


async def start_directly(loop: Loop, meeting: str) -> str:
    """Start a recording through RTK's API, as a host or another tool would; its id."""
    headers = {"Authorization": f"Bearer {loop.emulator.config.api_token}"}
    url = loop.emulator.api_url + "/recordings"
    async with loop.http.post(url, json={"meeting_id": meeting}, headers=headers) as response:
        assert response.status == 201
        recording_id: str = (await response.json())["data"]["id"]
    await loop.control("DELETE", "/calls")  # from here on, the log holds the router's calls
    return recording_id


async def test_a_recording_started_before_any_join_is_found_and_not_started_again(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=start_at(1))
    recording_id = await start_directly(loop, "m-early")

    async def recording() -> bool:
        return [r["status"] for r in await loop.recordings("m-early")] == ["RECORDING"]

    await eventually(recording)  # its webhooks went nowhere: the router has to ask
    router = await loop.start_router()
    await wire(loop, router)

    await loop.play(joins("m-early", "ann", "ben"))
    decisions = await loop.decisions("m-early", expect=2)
    assert [d["outcome"] for d in decisions] == ["already_recording"] * 2
    assert {d["recording_id"] for d in decisions} == {recording_id}
    assert await loop.calls("start_recording") == []
    # Found once through active-recording; the second join already knew it.
    assert len(await loop.calls("active_recording")) == 1


async def test_a_recording_announced_by_webhook_needs_no_call_at_all(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=start_at(2))
    router = await loop.start_router()
    await wire(loop, router)
    await loop.play(joins("m-host", "ann"))
    await loop.decisions("m-host", expect=1)
    recording_id = await start_directly(loop, "m-host")
    await eventually(lambda: status_published(loop, recording_id, "RECORDING"))

    await loop.play(joins("m-host", "ben", "cid"))
    decisions = await loop.decisions("m-host", expect=3)
    assert [d["outcome"] for d in decisions] == ["no_match"] + ["already_recording"] * 2
    assert {d["recording_id"] for d in decisions[1:]} == {recording_id}
    assert await loop.calls() == []  # neither a start nor a look-up


async def status_published(loop: Loop, recording_id: str, status: str) -> bool:
    records = [json.loads(r.value or b"{}") for r in await loop.topic("recordings", timeout=5)]
    return any(r["recording_id"] == recording_id and r["status"] == status for r in records)


async def test_a_spent_retry_budget_fails_one_meeting_while_another_is_served(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=start_at(1), realtimekit={"retry_seconds": 5})
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control(
        "POST",
        "/faults",
        {"status": 500, "count": 10_000, "calls": ["start_recording"], "meetings": ["m-down"]},
    )
    await loop.play(joins("m-down", "ann"))
    await eventually(lambda: loop.calls("start_recording"))  # m-down is retrying

    await loop.play(joins("m-up", "ben"))
    [served] = await loop.decisions("m-up", expect=1)
    assert served["outcome"] == "started"
    [start] = await loop.starts("m-up")
    [failed] = await loop.decisions("m-down", expect=1, timeout=30)
    assert failed["outcome"] == "failed"
    assert failed["action"] == "start_recording"
    assert failed["recording_id"] is None
    assert "start_recording" in failed["error"]
    assert "HTTP 500" in failed["error"]
    assert loop.emulator.config.api_token not in failed["error"]

    attempts = [c for c in await loop.calls("start_recording") if c["meeting_id"] == "m-down"]
    assert len(attempts) >= 2
    assert {c["status"] for c in attempts} == {500}
    # m-down was still retrying after m-up's recording had started: it held nobody up.
    assert attempts[-1]["at"] > start["at"]
    assert await loop.recordings("m-down") == []

    [dead] = await loop.topic("dead_letter", expect=1)
    [logged] = [r for r in await loop.topic("webhooks") if r.value == dead.value]
    headers = dict(dead.headers)
    assert dead.key == b"m-down"
    assert headers["router-error"].decode() == failed["error"]
    assert headers["router-stage"] == b"effects"
    assert headers["rtk-uuid"].decode() == failed["delivery_id"]
    # Never the signature: a signed copy could be posted back and accepted again.
    assert "rtk-signature" in dict(logged.headers)
    assert "rtk-signature" not in headers


async def test_a_start_whose_every_answer_was_lost_is_started_not_failed(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """RTK carries the start out, but every answer comes later than the router waits, until
    the retry budget is spent: the active recording is checked, and it is the router's own."""
    loop = await make_loop(
        policy=start_at(1), realtimekit={"retry_seconds": 1.5, "request_timeout_seconds": 0.3}
    )
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control("PUT", "/latency", {"ms": 600, "calls": ["start_recording"]})

    await loop.play(joins("m-lost", "ann"))
    [decision] = await loop.decisions("m-lost", expect=1)
    assert decision["outcome"] == "started", decision
    assert decision["error"] is None
    [recording] = await loop.recordings("m-lost")
    assert decision["recording_id"] == recording["id"]
    assert len(await loop.calls("start_recording")) >= 2  # retried, then the budget ran out

    # No dead-letter, and the next join knows the recording: no second one follows.
    await loop.control("PUT", "/latency", {"ms": 0})
    await loop.play(joins("m-lost", "ben"))
    decisions = await loop.decisions("m-lost", expect=2)
    assert decisions[1]["outcome"] == "already_recording"
    assert len(await loop.recordings("m-lost")) == 1
    dead = [m for m in await loop.topic("dead_letter", timeout=2) if m.key == b"m-lost"]
    assert dead == []
