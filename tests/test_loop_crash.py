"""A router killed with SIGKILL in the middle of starting a recording, and restarted: the
webhook whose offset was never committed is replayed, and still one recording is started
and every join gets its decision.

The router runs as `router serve` in a child process (a real kill: no drain, no commit, no
leaving the group). RTK's retries are what carry the joins sent while it is down.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.plugins.e2e import ChildRouter, Loop, eventually, wire

MEETING = "m-crash"


def start_at(threshold: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "name": f"{threshold}-or-more",
                "on": "meeting.participantJoined",
                "when": {"session.participants": {"gte": threshold}},
                "action": "start_recording",
            }
        ]
    }


async def start_in_flight(loop: Loop) -> None:
    """Kill while RTK is still working on the `POST /recordings`: the router has looked for
    an active recording (and found none), and the start it sent next is held up 1 s."""

    async def looked_up() -> bool:
        path = f"/recordings/active-recording/{MEETING}"
        return any(c["path"].endswith(path) for c in await loop.calls("active_recording"))

    await eventually(looked_up, interval=0.02)
    await asyncio.sleep(0.3)


async def start_answered(loop: Loop) -> None:
    """Kill as soon as RTK has answered the start: the decision and state may or may not be
    on their topics, and the offset is most likely not committed yet."""
    await eventually(lambda: loop.starts(MEETING), interval=0.02)


@pytest.mark.parametrize(
    ("latency_ms", "crash_point"),
    [(1000, start_in_flight), (0, start_answered)],
    ids=["start-in-flight", "start-answered"],
)
async def test_sigkill_mid_start_and_restart_starts_one_recording_and_loses_no_decision(
    make_loop: Callable[..., Awaitable[Loop]],
    latency_ms: float,
    crash_point: Callable[[Loop], Awaitable[None]],
) -> None:
    loop = await make_loop(
        # RTK retries a failed delivery for a while; here for about 50 s, past the restart.
        emulator_options={"webhook_attempts": 10, "webhook_backoff": 0.1},
        policy=start_at(2),
    )
    await loop.control("PUT", "/latency", {"ms": latency_ms, "calls": ["start_recording"]})
    first = await start_wired(loop)
    await play_joins(loop, "ann", "ben")  # ben is the second: his join starts the recording
    await crash_point(loop)
    await first.kill()
    assert first.process.returncode == -signal.SIGKILL

    # While it is down, another join: RTK keeps retrying its delivery.
    await play_joins(loop, "cid")
    second = await start_wired(loop)
    await play_joins(loop, "dee")

    joins = await eventually(lambda: delivered_joins(loop, 4))
    decisions = await eventually(lambda: decided(loop, joins), timeout=30)
    [recording] = await loop.recordings(MEETING)
    # One POST in all: the restarted router found the recording through active-recording.
    # (The killed member stays in the group for the 2 s session timeout, so the replay comes
    # well after RTK finished the held-up start.)
    assert [c["status"] for c in await loop.calls("start_recording")] == [201]
    ann, ben, cid, dee = ([d for d in decisions if d["delivery_id"] == j] for j in joins)
    assert [d["outcome"] for d in ann] == ["no_match"]
    # ben's join may be decided twice (before the kill and on replay), no other is.
    assert [d["outcome"] for d in ben] in (
        ["started"],
        ["already_recording"],
        ["started", "already_recording"],
    )
    assert [d["outcome"] for d in cid + dee] == ["already_recording"] * 2
    assert {d["recording_id"] for d in ben + cid + dee} == {recording["id"]}
    await same_ce_id_for_repeats(loop)
    assert await second.terminate() == 0


async def play_joins(loop: Loop, *people: str) -> None:
    steps = [{"at": 0.3 * i, "action": "join", "participant": p} for i, p in enumerate(people)]
    await loop.play({"meeting_id": MEETING, "end_when_empty": False, "steps": steps})


async def same_ce_id_for_repeats(loop: Loop) -> None:
    """A decision published again on replay carries the `ce_id` it had the first time, so
    consumers can drop the repeat (delivery is at least once)."""
    ids: dict[str, set[bytes]] = {}
    for record in await loop.topic("decisions"):
        delivery = json.loads(record.value or b"{}")["delivery_id"]
        ids.setdefault(delivery, set()).add(dict(record.headers)["ce_id"])
    assert all(len(found) == 1 for found in ids.values()), ids


async def start_wired(loop: Loop) -> ChildRouter:
    """A `router serve` process, ready, with the emulator's webhooks pointed at it."""
    router = await loop.start_process()
    await router.wait_ready(loop.http)
    await wire(loop, router)
    return router


async def delivered_joins(loop: Loop, count: int) -> list[str] | None:
    """The rtk-uuids of the joins RTK got a 200 for, once there are `count` of them."""
    rows = await loop.webhooks(MEETING, "meeting.participantJoined")
    ids = [d["delivery_id"] for d in rows if d["status"] == 200]
    return ids if len(ids) >= count else None


async def decided(loop: Loop, joins: list[str]) -> list[dict[str, Any]] | None:
    """The meeting's decisions, once every join in `joins` has one."""
    decisions = await loop.decisions(MEETING, expect=len(joins), timeout=1)
    return decisions if {d["delivery_id"] for d in decisions} >= set(joins) else None


async def test_peers_counted_before_a_restart_still_count_after_it(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    # Two joins, a clean restart, a third join: the threshold of three is reached only if the
    # restarted worker restored the meeting's peers before it processed the third join.
    loop = await make_loop(policy=start_at(3))
    first = await loop.start_router()
    await wire(loop, first)
    script: dict[str, Any] = {"meeting_id": MEETING, "end_when_empty": False}
    steps = [{"at": 0.2 * i, "action": "join", "participant": p} for i, p in enumerate("ab")]
    await loop.play({**script, "steps": steps})
    assert len(await loop.decisions(MEETING, expect=2)) == 2
    await first.stop()

    second = await loop.start_router()
    await wire(loop, second)
    await loop.play({**script, "steps": [{"action": "join", "participant": "c"}]})
    decisions = await loop.decisions(MEETING, expect=3)
    assert [d["outcome"] for d in decisions] == ["no_match", "no_match", "started"]
    assert len(await loop.starts(MEETING)) == 1
