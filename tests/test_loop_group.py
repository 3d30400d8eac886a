"""Two router instances in one consumer group while meetings are under way: a second instance
joins (the partitions are shared out), then the first leaves (the second takes them all).
Each meeting still gets one recording, and every join exactly one decision."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from tests.plugins.e2e import Loop, eventually, wire

# On 3 partitions these ids land on partitions 2, 0, 0, 0, 2 and 1: whichever partitions an
# instance is given, it has meetings to decide for.
MEETINGS = [f"m-group-{i}" for i in range(6)]
START_AT_TWO = {
    "rules": [
        {
            "name": "two-or-more",
            "on": "meeting.participantJoined",
            "when": {"session.participants": {"gte": 2}},
            "action": "start_recording",
        }
    ]
}


async def test_two_instances_one_group_one_recording_per_meeting_and_one_decision_per_join(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(
        emulator_options={"webhook_attempts": 8, "webhook_backoff": 0.1}, policy=START_AT_TWO
    )
    rounds = 0

    async def join_round() -> None:
        """One more participant joins every meeting."""
        nonlocal rounds
        for meeting in MEETINGS:
            step = {"action": "join", "participant": f"p{rounds}"}
            await loop.play({"meeting_id": meeting, "end_when_empty": False, "steps": [step]})
        rounds += 1

    first = await loop.start_router()
    await wire(loop, first)
    await join_round()
    await join_round()
    await eventually(lambda: decisions_made(loop, first.url), timeout=20)

    # A second instance joins the group while people keep joining, until it has decided
    # something itself; then the first leaves, with joins still arriving.
    second = await loop.start_router()
    while not await decisions_made(loop, second.url):
        assert rounds < 60, "the second instance never got a partition"
        await join_round()
        await asyncio.sleep(0.4)
    await wire(loop, second)
    await join_round()
    decided_by_first = await decisions_made(loop, first.url)
    await first.stop()
    await join_round()

    joins = {m: await eventually(lambda m=m: delivered_joins(loop, m, rounds)) for m in MEETINGS}
    await eventually(lambda: every_join_decided(loop, joins), timeout=30)
    await asyncio.sleep(1.0)  # time for a late repeat to show up
    decisions = await every_join_decided(loop, joins)
    assert decisions is not None
    for meeting in MEETINGS:
        mine = [d for d in decisions if d["meeting_id"] == meeting]
        repeats = Counter(d["delivery_id"] for d in mine)
        assert sorted(repeats.values()) == [1] * rounds, (meeting, repeats)
        expected = ["no_match", "started"] + ["already_recording"] * (rounds - 2)
        assert [d["outcome"] for d in mine] == expected, meeting
        assert len(await loop.starts(meeting)) == 1, meeting
    # Both instances did part of the work.
    assert 0 < decided_by_first < len(decisions)
    assert 0 < await decisions_made(loop, second.url) < len(decisions)


async def decisions_made(loop: Loop, url: str) -> int:
    """How many decisions an instance made, from its own metrics."""
    async with loop.http.get(url + "/metrics") as response:
        text = await response.text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("router_decisions_total{")
    )


async def delivered_joins(loop: Loop, meeting: str, count: int) -> list[str] | None:
    rows = await loop.webhooks(meeting, "meeting.participantJoined")
    ids = [d["delivery_id"] for d in rows if d["status"] == 200]
    return ids if len(ids) == count else None


async def every_join_decided(
    loop: Loop, joins: dict[str, list[str]]
) -> list[dict[str, Any]] | None:
    """Every decision on the topic, once each join has at least one."""
    decisions = [json.loads(r.value or b"{}") for r in await loop.topic("decisions", timeout=5)]
    decided = {d["delivery_id"] for d in decisions}
    return decisions if all(set(ids) <= decided for ids in joins.values()) else None
