"""End to end: a scripted meeting in the emulator, webhooks through the router, the policy
starting a recording through the RTK API, and the decisions on Kafka; then the same join
delivered many times at once, and many peers joining at once, starting one recording."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.helpers import joined_body
from tests.plugins.e2e import Loop, wire


def start_at(threshold: int) -> dict[str, Any]:
    """A policy that starts recording once `threshold` peers are present."""
    return {
        "rules": [
            {
                "name": f"{threshold}-or-more",
                "on": "meeting.participantJoined",
                "when": {"session.participants": {"gte": threshold}},
                "action": "start_recording",
                "recording": {"file_name_prefix": "{meeting.id}"},
            }
        ]
    }


@pytest.mark.parametrize("threshold", [1, 2, 3], ids=["first", "second", "third"])
async def test_recording_starts_at_the_nth_participant_and_not_before(
    make_loop: Callable[..., Awaitable[Loop]], threshold: int
) -> None:
    loop = await make_loop(policy=start_at(threshold))
    router = await loop.start_router()
    await wire(loop, router)
    people = ["alice", "bob", "carol", "dave"][: threshold + 1]
    meeting = f"m-{threshold}"
    await loop.play(
        {
            "meeting_id": meeting,
            "title": "Weekly sync",
            "steps": [
                {"at": 0.2 * i, "action": "join", "participant": who}
                for i, who in enumerate(people)
            ],
        }
    )
    decisions = await loop.decisions(meeting, expect=len(people))
    expected = ["no_match"] * (threshold - 1) + ["started", "already_recording"]
    assert [d["outcome"] for d in decisions] == expected
    assert [d["participant"]["custom_participant_id"] for d in decisions] == people
    assert len(await loop.starts(meeting)) == 1
    started, after = decisions[threshold - 1], decisions[threshold]
    assert started["rule"] == f"{threshold}-or-more"
    assert started["action"] == "start_recording"
    assert started["recording_id"] == after["recording_id"]
    assert all(d["recording_id"] is None for d in decisions[: threshold - 1])
    [recording] = await loop.recordings(meeting)
    assert recording["id"] == started["recording_id"]
    assert recording["params"]["file_name_prefix"] == meeting


@pytest.mark.parametrize(
    ("receivers", "webhook_ids", "accepted"),
    [(1, 1, 1), (1, 20, 20), (2, 1, 2)],
    ids=["receiver-dedupes", "worker-dedupes", "two-receivers"],
)
async def test_the_same_join_delivered_20_times_at_once_starts_one_recording(
    make_loop: Callable[..., Awaitable[Loop]],
    receivers: int,
    webhook_ids: int,
    accepted: int,
) -> None:
    # One signed body, 20 deliveries with fresh rtk-uuids (as RTK's retries may carry): a
    # receiver answers "duplicate" to the content it already logged; copies it cannot tell
    # apart (another webhook id, another instance) reach the log, and the worker recognises
    # the body it already processed for the meeting.
    loop = await make_loop(policy=start_at(1))
    routers = [await loop.start_router() for _ in range(receivers)]
    body = joined_body("m-dup", "peer-1")
    answers = await asyncio.gather(
        *(
            loop.deliver(routers[i % receivers].url, body, webhook_id=f"wh-{i % webhook_ids}")
            for i in range(20)
        )
    )
    assert {status for status, _ in answers} == {200}
    statuses = Counter(answer["status"] for _, answer in answers)
    assert (statuses["accepted"], statuses["duplicate"]) == (accepted, 20 - accepted)

    [decision] = await loop.decisions("m-dup", expect=1)
    assert decision["outcome"] == "started"
    assert len(await loop.topic("webhooks", expect=accepted)) == accepted
    await asyncio.sleep(1.0)  # time for a wrong second decision or start to show up
    assert len(await loop.decisions("m-dup", expect=1)) == 1
    assert len(await loop.starts("m-dup")) == 1
    assert len(await loop.recordings("m-dup")) == 1


async def test_20_peers_joining_at_once_start_one_recording(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=start_at(2))
    router = await loop.start_router()
    bodies = [joined_body("m-crowd", f"peer-{i}") for i in range(20)]
    answers = await asyncio.gather(*(loop.deliver(router.url, body) for body in bodies))
    assert [answer["status"] for _, answer in answers] == ["accepted"] * 20

    decisions = await loop.decisions("m-crowd", expect=20)
    assert len(decisions) == 20
    assert sorted(d["participant"]["peer_id"] for d in decisions) == sorted(
        json.loads(b)["participant"]["peerId"] for b in bodies
    )
    # The lane is serial: whoever was first was alone, the second started it, the rest found it.
    assert [d["outcome"] for d in decisions] == ["no_match", "started"] + ["already_recording"] * 18
    recording_id = decisions[1]["recording_id"]
    assert {d["recording_id"] for d in decisions[1:]} == {recording_id}
    assert len(await loop.starts("m-crowd")) == 1
