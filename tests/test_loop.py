"""End to end: a scripted meeting in the emulator, webhooks through the router, the policy
starting a recording through the RTK API, and the decisions on Kafka."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.plugins.e2e import Loop, wire

START_AT_TWO = {
    "rules": [
        {
            "name": "two-or-more",
            "on": "meeting.participantJoined",
            "when": {"session.participants": {"gte": 2}},
            "action": "start_recording",
            "recording": {"file_name_prefix": "{meeting.id}"},
        }
    ]
}


async def test_recording_starts_at_the_second_participant(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=START_AT_TWO)
    router = await loop.start_router()
    await wire(loop, router)
    await loop.play(
        {
            "meeting_id": "m-two",
            "title": "Weekly sync",
            "steps": [
                {"at": 0, "action": "join", "participant": "alice"},
                {"at": 0.3, "action": "join", "participant": "bob"},
                {"at": 0.6, "action": "join", "participant": "carol"},
            ],
        }
    )
    decisions = await loop.decisions("m-two", expect=3)
    assert [d["outcome"] for d in decisions] == ["no_match", "started", "already_recording"]
    assert [d["participant"]["custom_participant_id"] for d in decisions] == [
        "alice",
        "bob",
        "carol",
    ]
    assert len(await loop.starts("m-two")) == 1
    started = decisions[1]
    assert started["rule"] == "two-or-more"
    assert started["recording_id"] == decisions[2]["recording_id"]
