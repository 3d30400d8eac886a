"""Reconciliation end to end (SPEC 10): the embedded broker, a router, the RTK emulator over
HTTP losing chosen webhooks for good, and a short interval. Lost joins start the recording they
should have (once, trigger `reconcile`), a lost `meeting.ended` ends the session, lost recording
webhooks are made up for by polls, and a refusing RTK stops reconciliation with a reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from router.clock import monotonic
from router.core.meeting_state import MeetingState
from tests.plugins.e2e import Loop, eventually, wire
from tests.test_topics_contract import validator_for

INTERVAL = 1.0
RECONCILE = {"interval_seconds": INTERVAL}
JOINED = "meeting.participantJoined"
TWO_PRESENT = {
    "rules": [
        {
            "name": "two-present",
            "on": JOINED,
            "when": {"session.participants": {"gte": 2}},
            "action": "start_recording",
        }
    ]
}
ANYONE = {"rules": [{"name": "anyone", "on": JOINED, "action": "start_recording"}]}

MakeLoop = Callable[..., Awaitable[Loop]]


async def records(loop: Loop, topic: str, meeting_id: str) -> list[dict[str, Any]]:
    """The meeting's records on a JSON topic, each checked against its committed JSON Schema
    and its CloudEvents headers (a reconciliation's come from `rtk-router/reconcile`)."""
    found = [r for r in await loop.topic(topic, timeout=5) if r.key == meeting_id.encode()]
    values = []
    for message in found:
        value = json.loads(message.value or b"{}")
        headers = {k: v.decode() for k, v in message.headers}
        assert not list(validator_for(headers["ce_type"]).iter_errors(value)), value
        assert headers["ce_type"] == value["type"]
        assert headers["ce_source"] in {"rtk-router/realtimekit", "rtk-router/reconcile"}
        if headers["ce_source"] == "rtk-router/reconcile":
            assert headers["ce_id"].startswith(f"reconcile:{meeting_id}:")
        values.append(value)
    ids = [dict(m.headers)["ce_id"] for m in found]
    assert len(set(ids)) == len(ids), ids
    return values


async def drop(loop: Loop, meeting_id: str, *events: str) -> None:
    await loop.control(
        "POST", "/webhooks/drops", {"events": list(events), "meetings": [meeting_id]}
    )


def join(participant: str, at: float = 0.0) -> dict[str, Any]:
    return {"at": at, "action": "join", "participant": participant}


async def test_lost_joins_start_the_recording_once_by_reconciliation(make_loop: MakeLoop) -> None:
    loop = await make_loop(policy=TWO_PRESENT, reconcile=RECONCILE)
    router = await loop.start_router()
    await wire(loop, router)
    meeting = f"m-{uuid.uuid4()}"
    await drop(loop, meeting, JOINED)

    await loop.play({"meeting_id": meeting, "steps": [join("ann"), join("bob", at=1.5)]})
    second_join = monotonic() + 1.5
    started = await eventually(lambda: loop.starts(meeting), timeout=30)
    # A few intervals more: nothing starts it again.
    await eventually(lambda: rounds_since(loop, meeting, started[0]["at"], 3), timeout=30)

    assert len(await loop.starts(meeting)) == 1
    # RTK showed two live peers from the second join on; the start came within one interval
    # of that (with room for the worker's fetch and the emulator's own pace).
    assert started[0]["at"] - second_join < INTERVAL + 1.5

    # A round may have come between the two joins (RTK showing one: no match) or not.
    async def decided() -> list[dict[str, Any]] | None:
        found = await loop.decisions(meeting, expect=1)
        return found if any(d["outcome"] == "started" for d in found) else None

    decisions = await eventually(decided, timeout=30)
    assert {d["trigger"] for d in decisions} == {"reconcile"}
    assert [d["outcome"] for d in decisions] in (["no_match", "started"], ["started"])
    decision = decisions[-1]
    assert decision["participant"] is None
    assert decision["rule"] == "two-present"
    assert decision["delivery_id"].startswith(f"reconcile:{meeting}:")
    assert decision["recording_id"] == (await loop.recordings(meeting))[0]["id"]
    meetings = await records(loop, "meetings", meeting)
    seen = [(r["type"], r["participants_present"], r["reason"]) for r in meetings]
    assert seen[0] == ("meeting.started", 0, None)
    assert seen[1:] in (
        [("meeting.reconciled", 1, "reconciled"), ("meeting.reconciled", 2, "reconciled")],
        [("meeting.reconciled", 2, "reconciled")],
    )
    assert len(seen[1:]) == len(decisions)
    assert all(r["participant"] is None for r in meetings)
    recordings = await records(loop, "recordings", meeting)
    assert (recordings[0]["status"], recordings[0]["source"]) == ("INVOKED", "api")


async def rounds_since(loop: Loop, meeting: str, since: float, count: int) -> bool:
    """Whether the meeting's session was checked `count` times after `since`."""
    calls = await loop.calls("active_session")
    return (
        sum(
            1 for c in calls if c["path"].endswith(f"/{meeting}/active-session") and c["at"] > since
        )
        >= count
    )


async def test_a_lost_meeting_ended_is_made_up_for(make_loop: MakeLoop) -> None:
    loop = await make_loop(reconcile=RECONCILE)
    router = await loop.start_router()
    await wire(loop, router)
    meeting = f"m-{uuid.uuid4()}"
    await drop(loop, meeting, "meeting.ended")
    steps = [join("ann"), {"at": 0.3, "action": "leave", "participant": "ann"}]

    await loop.play({"meeting_id": meeting, "steps": steps})

    async def ended() -> list[dict[str, Any]]:
        return [r for r in await records(loop, "meetings", meeting) if r["type"] == "meeting.ended"]

    found = await eventually(ended, timeout=30)
    await eventually(lambda: no_session_checks_for(loop, meeting, 2 * INTERVAL), timeout=30)

    assert len(await ended()) == 1
    end = found[0]
    assert (end["reason"], end["participants_present"], end["participant"]) == (
        "reconciled",
        0,
        None,
    )
    started = [
        r for r in await records(loop, "meetings", meeting) if r["type"] == "meeting.started"
    ]
    assert end["session_id"] == started[0]["session_id"]
    # The meeting's state on the state topic knows the session is over: a restart keeps it so.
    states = [r for r in await loop.topic("state", timeout=5) if r.key == meeting.encode()]
    last = MeetingState.from_json(states[-1].value or b"")
    assert last.is_past_session(end["session_id"])
    # Nothing the router made itself is on the webhooks log: only what RTK sent.
    logged = [r for r in await loop.topic("webhooks", timeout=5) if r.key == meeting.encode()]
    assert {dict(r.headers)["router-source"] for r in logged} == {b"realtimekit"}


async def no_session_checks_for(loop: Loop, meeting: str, seconds: float) -> bool:
    """Whether the meeting's session has not been checked for `seconds` (it is over)."""
    calls = [c for c in await loop.calls("active_session") if f"/{meeting}/" in c["path"]]
    return bool(calls) and monotonic() - calls[-1]["at"] > seconds


async def test_a_recording_whose_webhooks_are_lost_is_followed_by_polls(
    make_loop: MakeLoop,
) -> None:
    loop = await make_loop(policy=ANYONE, reconcile=RECONCILE)
    router = await loop.start_router()
    await wire(loop, router)
    meeting = f"m-{uuid.uuid4()}"
    await drop(loop, meeting, "recording.statusUpdate")

    await loop.play({"meeting_id": meeting, "steps": [join("ann")]})

    async def statuses() -> list[tuple[str, str]]:
        return [(r["status"], r["source"]) for r in await records(loop, "recordings", meeting)]

    await eventually(lambda: has(statuses, ("RECORDING", "poll")), timeout=30)
    recording_id = (await loop.recordings(meeting))[0]["id"]
    emulator = loop.emulator
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.api_url}/recordings/{recording_id}"
        headers = {"Authorization": f"Bearer {emulator.config.api_token}"}
        async with http.put(url, json={"action": "stop"}, headers=headers) as answer:
            assert answer.status == 200
    await eventually(lambda: has(statuses, ("UPLOADED", "poll")), timeout=30)

    seen = await statuses()
    assert seen[0] == ("INVOKED", "api")
    assert seen[1] == ("RECORDING", "poll")
    assert seen[-1] == ("UPLOADED", "poll")
    assert {source for _, source in seen[1:]} == {"poll"}
    uploaded = (await records(loop, "recordings", meeting))[-1]
    assert uploaded["recording_id"] == recording_id
    assert uploaded["download_url"] is not None
    assert uploaded["delivery_id"].startswith(f"reconcile:{meeting}:")
    delivered = [d for d in await loop.control("GET", "/webhooks") if d["key"] == recording_id]
    assert delivered
    assert {d["error"] for d in delivered} == {"dropped"}


async def has(read: Callable[[], Awaitable[list[Any]]], item: Any) -> bool:
    return item in await read()


async def test_a_refused_token_stops_reconciliation_with_a_reason(make_loop: MakeLoop) -> None:
    loop = await make_loop(reconcile=RECONCILE)
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control(
        "POST", "/faults", {"status": 401, "count": 1000, "calls": ["active_session"]}
    )
    meeting = f"m-{uuid.uuid4()}"

    await loop.play({"meeting_id": meeting, "steps": [join("ann")]})

    async def readiness() -> dict[str, Any] | None:
        async with loop.http.get(router.url + "/readyz") as answer:
            body: dict[str, Any] = await answer.json()
            return body if answer.status == 503 else None

    body = await eventually(readiness, timeout=30)
    first = len(await loop.calls("active_session"))
    await asyncio.sleep(3 * INTERVAL)  # three rounds' time: no second call

    assert "HTTP 401" in body["checks"]["reconcile"]
    assert "realtimekit.api_token" in body["checks"]["reconcile"]
    assert first == 1
    assert len(await loop.calls("active_session")) == 1
    async with loop.http.get(router.url + "/metrics") as answer:
        text = await answer.text()
    assert 'router_reconcile_total{check="session",outcome="unauthorized"} 1.0' in text


async def test_a_webhook_during_a_reconciliation_start_waits_its_turn(
    make_loop: MakeLoop,
) -> None:
    loop = await make_loop(policy=TWO_PRESENT, reconcile=RECONCILE)
    router = await loop.start_router()
    await wire(loop, router)
    meeting = f"m-{uuid.uuid4()}"
    await drop(loop, meeting, JOINED)
    await loop.control("PUT", "/latency", {"ms": 3000, "calls": ["start_recording"]})
    steps = [join("ann", at=0.0), join("bob", at=0.0)]

    await loop.play({"meeting_id": meeting, "steps": steps})

    async def checking_before_start() -> bool:
        calls = await loop.calls("active_recording")
        return any(c["path"].endswith(f"/{meeting}") for c in calls)

    # The reconciliation's decision asked active-recording: its start is now in flight (3 s).
    await eventually(checking_before_start, timeout=30, interval=0.02)
    await loop.play({"meeting_id": meeting, "steps": [{"action": "leave", "participant": "bob"}]})
    await eventually(lambda: loop.starts(meeting), timeout=30)

    async def left() -> list[dict[str, Any]] | None:
        found = await records(loop, "meetings", meeting)
        return found if found[-1]["type"] == "participant.left" else None

    meetings = await eventually(left, timeout=30)
    seen = [(r["type"], r["participants_present"]) for r in meetings]
    # The leave came while the meeting's start was in flight: it waited in the meeting's lane
    # and was applied after the adopted count (its peer's join was lost, so it is unknown and
    # the count stays), never before it.
    assert seen[-2:] == [("meeting.reconciled", 2), ("participant.left", 2)]
    decisions = await loop.decisions(meeting, expect=1)
    assert [d["outcome"] for d in decisions if d["trigger"] == "reconcile"][-1] == "started"
