"""The worker's promises where rebalances, bad state records and odd topics can break them:
state is on the state topic before its offset is committed, a corrupt state record is skipped
and counted, readiness waits for partitions, and the state topic must match the webhooks
topic's partition count."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from router.app import RUNTIME
from router.core.meeting_state import MeetingState
from router.kafka import client_options
from tests.plugins.e2e import Loop, eventually, wire
from tests.plugins.traffic import Traffic, restart_broker_under, start_at

# On 3 partitions these ids land on partitions 0, 1 and 2.
MEETINGS = ["m-group-1", "m-group-5", "m-group-0"]
# (a rule that never matches: every join gets a `no_match` decision)
NEVER = start_at(1000)


async def test_state_of_an_event_finished_during_a_rebalance_is_on_the_state_topic(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """Starts in flight (slow RTK) while a second instance joins: the first instance's revoke
    waits for them, and their state is written before their offsets are committed."""
    loop = await make_loop(policy=start_at(2))
    first = await loop.start_router()
    await wire(loop, first)
    await join_all(loop, "p0")
    for meeting in MEETINGS:  # (the first instance owns every partition)
        assert [d["outcome"] for d in await loop.decisions(meeting, expect=1)] == ["no_match"]
    await loop.control("PUT", "/latency", {"ms": 2500, "calls": ["start_recording"]})
    await join_all(loop, "p1")
    for meeting in MEETINGS:
        await eventually(functools.partial(delivered, loop, meeting, 2))
    await asyncio.sleep(0.3)  # the starts are now in flight at RTK
    second = await loop.start_router(wait=False)  # joining the group revokes every partition
    started: dict[str, str] = {}
    for meeting in MEETINGS:
        decisions = await loop.decisions(meeting, expect=2)
        assert [d["outcome"] for d in decisions] == ["no_match", "started"]
        started[meeting] = decisions[1]["recording_id"]
        assert len(await loop.starts(meeting)) == 1

    # Each meeting's last state on the state topic knows both joins and the recording (a
    # later status webhook alone would bring back the recording, not the second join).
    states = await eventually(lambda: last_states(loop, MEETINGS))
    for meeting in MEETINGS:
        assert states[meeting].session_recording_id == started[meeting], meeting
        assert states[meeting].participants_present == 2, meeting

    # And the next join in the same session, on whichever instance, starts nothing new.
    await loop.control("PUT", "/latency", {"ms": 0})
    await join_all(loop, "p2")
    for meeting in MEETINGS:
        decisions = await loop.decisions(meeting, expect=3)
        assert [d["outcome"] for d in decisions][2] == "already_recording"
        assert len(await loop.starts(meeting)) == 1
    await second.stop()
    await first.stop()


async def join_all(loop: Loop, participant: str) -> None:
    for meeting in MEETINGS:
        step = {"action": "join", "participant": participant}
        await loop.play({"meeting_id": meeting, "end_when_empty": False, "steps": [step]})


async def delivered(loop: Loop, meeting: str, count: int) -> bool:
    rows = await loop.webhooks(meeting, "meeting.participantJoined")
    return sum(1 for r in rows if r["status"] == 200) >= count


async def last_states(loop: Loop, meetings: list[str]) -> dict[str, MeetingState] | None:
    """Each meeting's newest state record, once every meeting has one naming a recording."""
    found: dict[str, MeetingState] = {}
    for record in await loop.topic("state", timeout=5):
        if record.key is not None and record.value is not None:
            state = MeetingState.from_json(record.value)
            found[state.meeting_id] = state
    wanted = {m: found[m] for m in meetings if m in found}
    if len(wanted) < len(meetings):
        return None
    return wanted if all(s.session_recording_id for s in wanted.values()) else None


async def test_a_corrupt_state_record_is_skipped_counted_and_logged(
    make_loop: Callable[..., Awaitable[Loop]], caplog: pytest.LogCaptureFixture
) -> None:
    loop = await make_loop(policy=start_at(1))
    kafka = loop.kafka
    await create_topics(loop, {kafka.topics.state: 3, kafka.topics.webhooks: 3})
    producer = AIOKafkaProducer(**client_options(kafka, loop.broker.bootstrap_servers))
    await producer.start()
    try:
        for partition in range(3):
            await producer.send_and_wait(
                kafka.topics.state, b"\xff not a state {", key=b"m-broken", partition=partition
            )
    finally:
        await producer.stop()

    with caplog.at_level(logging.WARNING, logger="router.worker"):
        router = await loop.start_router()
        await wire(loop, router)
        for meeting in MEETINGS:
            step = {"action": "join", "participant": "p0"}
            await loop.play({"meeting_id": meeting, "end_when_empty": False, "steps": [step]})
        for meeting in MEETINGS:
            decisions = await loop.decisions(meeting, expect=1)
            assert [d["outcome"] for d in decisions] == ["started"]
    assert await metric(loop, router.url, "router_state_records_invalid_total") == 3.0
    skipped = [r for r in caplog.records if r.getMessage().startswith("state record skipped")]
    assert sorted(int(getattr(r, "partition", -1)) for r in skipped) == [0, 1, 2]
    assert all(getattr(r, "offset", None) == 0 for r in skipped)


async def test_readiness_waits_for_the_worker_to_own_partitions(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop()
    router = await loop.start_router(wait=False)
    seen: list[str] = []

    async def ready_now() -> bool:
        status, body = await readyz(loop, router.url)
        seen.append(body.get("checks", {}).get("worker", "") if status != 200 else "ok")
        return status == 200

    await eventually(ready_now, timeout=30, interval=0.05)
    assert "waiting for partitions" in seen, seen
    assert seen.index("waiting for partitions") < seen.index("ok")


async def test_a_state_topic_with_other_partitions_than_the_webhooks_topic_is_not_ready(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop()
    topics = loop.kafka.topics
    await create_topics(loop, {topics.webhooks: 3, topics.state: 2})
    router = await loop.start_router(wait=False)

    async def reason() -> str | None:
        status, body = await readyz(loop, router.url)
        assert status != 200
        worker = str(body.get("checks", {}).get("worker", ""))
        return worker if "partitions" in worker and "3" in worker else None

    text = await eventually(reason, timeout=20)
    assert f"{topics.state} has 2 partitions" in text
    assert f"{topics.webhooks} has 3" in text
    await asyncio.sleep(2.5)  # (the readiness watch runs again: still refused)
    status, _ = await readyz(loop, router.url)
    assert status == 503


async def create_topics(loop: Loop, partitions: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(**client_options(loop.kafka, loop.broker.bootstrap_servers))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in partitions.items()]
        )
    finally:
        await admin.close()


async def readyz(loop: Loop, url: str) -> tuple[int, dict[str, Any]]:
    async with loop.http.get(url + "/readyz") as response:
        return response.status, await response.json(content_type=None)


async def metric(loop: Loop, url: str, name: str) -> float:
    async with loop.http.get(url + "/metrics") as response:
        text = await response.text()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    assert values, f"{name} not exported"
    return sum(values)


async def test_after_the_broker_restarts_empty_every_accepted_webhook_is_decided(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """Positions of the old log are never committed onto the new one: every webhook the
    restarted broker acknowledged gets its decision (none is skipped)."""
    loop = await make_loop(policy=NEVER)
    router = await loop.start_router()
    traffic = Traffic(loop, router.url)
    gone = await restart_broker_under(traffic, before=150, after=60)
    accepted = {s.delivery_id for s in traffic.answered(200, since=gone)}

    async def undecided() -> bool:
        decisions = [json.loads(r.value or b"{}") for r in await loop.topic("decisions")]
        missing = accepted - {d["delivery_id"] for d in decisions}
        return not missing

    await eventually(undecided, timeout=60, interval=1.0)
    await router.stop()


async def test_an_ended_meeting_is_tombstoned_after_the_grace_period_and_a_live_one_kept(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=NEVER, worker={"ended_state_grace_seconds": 0.5})
    router = await loop.start_router()
    await wire(loop, router)
    ended, live = "m-ends", "m-goes-on"
    await loop.play(
        {
            "meeting_id": ended,
            "steps": [
                {"action": "join", "participant": "p0"},
                {"action": "leave", "participant": "p0"},
            ],
        }
    )
    await loop.play(
        {
            "meeting_id": live,
            "end_when_empty": False,
            "steps": [{"action": "join", "participant": "p0"}],
        }
    )
    await eventually(lambda: loop.webhooks(ended, "meeting.ended"))

    async def tombstoned() -> dict[str, bytes | None] | None:
        last: dict[str, bytes | None] = {}
        for record in await loop.topic("state", timeout=5):
            if record.key is not None:
                last[record.key.decode()] = record.value
        return last if ended in last and last[ended] is None else None

    last = await eventually(tombstoned, timeout=20, interval=1.0)
    assert last[live] is not None
    assert MeetingState.from_json(last[live]).participants_present == 1
    worker = router.runner.app[RUNTIME].worker
    assert worker is not None
    assert worker.meetings == 1  # only the live meeting is held in memory
