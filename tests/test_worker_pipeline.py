"""The batch pipeline's promise: a meeting whose event waits on RTK holds back only its own
later events, never other meetings' events, and fetching pauses (and resumes) while too many
meetings wait."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from tests.plugins.e2e import Loop, wire

# Meetings titled "Rec..." are recorded at their first join; others never are.
RECORD_TITLED = {
    "rules": [
        {
            "name": "record-rec-titles",
            "on": "meeting.participantJoined",
            "when": {"meeting.title": {"regex": "^Rec"}},
            "action": "start_recording",
        },
        {
            "name": "never",
            "on": "meeting.participantJoined",
            "when": {"session.participants": {"gte": 1000}},
            "action": "start_recording",
        },
    ]
}
START_LATENCY_MS = 3000


async def test_a_meeting_waiting_on_rtk_holds_back_only_its_own_events(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=RECORD_TITLED)
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control("PUT", "/latency", {"ms": START_LATENCY_MS, "calls": ["start_recording"]})
    await join(loop, "m-slow", "Rec slow", "p0")  # its start now waits 3 s at RTK
    await join(loop, "m-slow", "Rec slow", "p1")  # held back behind that start
    fast = [f"m-fast-{i}" for i in range(4)]
    for meeting in fast:
        await join(loop, meeting, "Weekly", "p0")

    slow = await loop.decisions("m-slow", expect=2)
    assert [d["outcome"] for d in slow] == ["started", "already_recording"]
    assert len(await loop.starts("m-slow")) == 1
    started_at = decided_at(slow[0])
    assert decided_at(slow[1]) >= started_at  # (its own later event came after, in order)
    for meeting in fast:
        [decision] = await loop.decisions(meeting, expect=1)
        assert decision["outcome"] == "no_match"
        # Decided while the slow meeting's start was still waiting at RTK.
        assert started_at - decided_at(decision) > dt.timedelta(seconds=1), meeting


async def test_fetching_pauses_while_too_many_meetings_wait_and_resumes(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    """With room for one waiting meeting, five slow starts and other meetings' joins all
    finish: the pause lifts each time the waiting meeting is done."""
    loop = await make_loop(policy=RECORD_TITLED, worker={"max_waiting_meetings": 1})
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control("PUT", "/latency", {"ms": 300, "calls": ["start_recording"]})
    recorded = [f"m-rec-{i}" for i in range(5)]
    others = [f"m-other-{i}" for i in range(5)]
    for rec, other in zip(recorded, others, strict=True):
        await join(loop, rec, "Rec standup", "p0")
        await join(loop, other, "Weekly", "p0")
    for meeting in recorded:
        assert [d["outcome"] for d in await loop.decisions(meeting, expect=1)] == ["started"]
        assert len(await loop.starts(meeting)) == 1
    for meeting in others:
        assert [d["outcome"] for d in await loop.decisions(meeting, expect=1)] == ["no_match"]


async def join(loop: Loop, meeting: str, title: str, participant: str) -> None:
    step: dict[str, Any] = {"action": "join", "participant": participant}
    await loop.play(
        {"meeting_id": meeting, "title": title, "end_when_empty": False, "steps": [step]}
    )


def decided_at(decision: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(decision["decided_at"].replace("Z", "+00:00"))
