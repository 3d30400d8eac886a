"""End to end through the policy: a rule on the participant's preset (looked up in RTK's
participant list), a stop when people leave, and shadow mode, which decides but calls nothing
that changes RTK."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.plugins.e2e import Loop, eventually, wire

HOSTS_START = {
    "rules": [
        {
            "name": "hosts-start",
            "on": "meeting.participantJoined",
            "when": {"participant.preset": {"in": ["host"]}},
            "action": "start_recording",
        }
    ]
}


def joins(meeting: str, *people: tuple[str, str | None]) -> dict[str, Any]:
    """A script of joins 0.2 s apart; a preset given is added to the meeting on join."""
    steps = [
        {"at": 0.2 * i, "action": "join", "participant": who, **({"preset": p} if p else {})}
        for i, (who, p) in enumerate(people)
    ]
    return {"meeting_id": meeting, "end_when_empty": False, "steps": steps}


def summary(decisions: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [
        (d["participant"]["custom_participant_id"], d["participant"]["preset"], d["outcome"])
        for d in decisions
    ]


async def test_a_preset_rule_starts_on_the_hosts_join_only(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=HOSTS_START)
    router = await loop.start_router()
    await wire(loop, router)
    # Added before anyone joins, as an app does to hand out join tokens.
    seeds = [("ann", "participant"), ("bob", "host"), ("cid", "participant")]
    await loop.control(
        "POST",
        "/meetings/m-preset/participants",
        {"participants": [{"custom_participant_id": c, "preset_name": p} for c, p in seeds]},
    )
    await loop.play(joins("m-preset", ("ann", None), ("bob", None), ("cid", None)))

    decisions = await loop.decisions("m-preset", expect=3)
    assert summary(decisions) == [
        ("ann", "participant", "no_match"),
        ("bob", "host", "started"),
        ("cid", "participant", "no_match"),
    ]
    assert decisions[1]["rule"] == "hosts-start"
    assert len(await loop.starts("m-preset")) == 1
    assert len(await loop.calls("participants")) == 1  # one listing, then the cache


async def test_a_preset_given_on_join_is_looked_up(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=HOSTS_START)
    router = await loop.start_router()
    await wire(loop, router)
    await loop.play(joins("m-script", ("hal", "host")))
    [decision] = await loop.decisions("m-script", expect=1)
    assert summary([decision]) == [("hal", "host", "started")]
    assert len(await loop.starts("m-script")) == 1


async def test_a_host_added_after_the_last_listing_still_starts_it(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop = await make_loop(policy=HOSTS_START)
    router = await loop.start_router()
    await wire(loop, router)
    await loop.play(joins("m-late-host", ("ann", "participant")))
    await eventually(lambda: loop.calls("participants"), interval=0.02)  # the list is read
    await loop.play(joins("m-late-host", ("bob", "host")))
    decisions = await loop.decisions("m-late-host", expect=2)
    assert summary(decisions) == [("ann", "participant", "no_match"), ("bob", "host", "started")]


def start_and_stop(stop_below: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "name": "two-start",
                "on": "meeting.participantJoined",
                "when": {"session.participants": {"gte": 2}},
                "action": "start_recording",
            },
            {
                "name": "few-stop",
                "on": "meeting.participantLeft",
                "when": {"session.participants": {"lt": stop_below}},
                "action": "stop_recording",
            },
        ]
    }


@pytest.mark.parametrize(
    ("people", "stop_below", "leaving"),
    [
        (["ann", "ben"], 2, [(0, "ben"), (0.8, "ann")]),
        (["ann", "ben", "cid"], 3, [(0, "ben"), (0, "cid")]),
    ],
    ids=["one-by-one", "two-at-once"],
)
async def test_a_leave_stops_the_recording_once_and_it_is_uploaded(
    make_loop: Callable[..., Awaitable[Loop]],
    people: list[str],
    stop_below: int,
    leaving: list[tuple[float, str]],
) -> None:
    loop = await make_loop(policy=start_and_stop(stop_below))
    router = await loop.start_router()
    await wire(loop, router)
    await loop.play(
        {
            "meeting_id": "m-stop",
            "steps": [
                {"at": 0.2 * i, "action": "join", "participant": p} for i, p in enumerate(people)
            ],
        }
    )

    async def recording() -> bool:
        return [r["status"] for r in await loop.recordings("m-stop")] == ["RECORDING"]

    async def everyone_in() -> bool:  # (the recording may start before the last join)
        joins = await loop.webhooks("m-stop", "meeting.participantJoined")
        return len({w["delivery_id"] for w in joins if w["status"] == 200}) >= len(people)

    await eventually(everyone_in)
    await eventually(recording)
    await loop.play(
        {
            "meeting_id": "m-stop",
            "steps": [{"at": at, "action": "leave", "participant": p} for at, p in leaving],
        }
    )

    decisions = await loop.decisions("m-stop", expect=len(people) + len(leaving))
    left = [d for d in decisions if d["trigger"] == "meeting.participantLeft"]
    # The first leave under the threshold stops it; a second one finds nothing to stop.
    assert [(d["action"], d["outcome"]) for d in left] == [
        ("stop_recording", "stopped"),
        ("stop_recording", "not_recording"),
    ]
    started = next(d for d in decisions if d["outcome"] == "started")
    assert left[0]["recording_id"] == started["recording_id"]
    [stop] = await loop.calls("stop_recording")
    assert (stop["method"], stop["status"]) == ("PUT", 200)
    assert stop["path"].endswith(f"/recordings/{started['recording_id']}")

    async def uploaded() -> list[str] | None:
        statuses = await published_statuses(loop, started["recording_id"])
        return statuses if statuses[-1:] == ["UPLOADED"] else None

    assert await eventually(uploaded) == ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]
    [recording] = await loop.recordings("m-stop")
    assert recording["history"] == ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]


async def published_statuses(loop: Loop, recording_id: str) -> list[str]:
    records = [json.loads(r.value or b"{}") for r in await loop.topic("recordings", timeout=5)]
    return [r["status"] for r in records if r["recording_id"] == recording_id]


SHADOW_RULES = [
    {
        "name": "hosts-start",
        "on": "meeting.participantJoined",
        "when": {"participant.preset": "host"},
        "action": "start_recording",
    },
    {
        "name": "empty-stop",
        "on": "meeting.participantLeft",
        "when": {"session.participants": 0},
        "action": "stop_recording",
    },
]


# Without a token nothing can be looked up either: the start rule reads no preset there.
ANY_JOIN_START = {k: v for k, v in SHADOW_RULES[0].items() if k != "when"}


@pytest.mark.parametrize(
    ("sections", "lookups"),
    [
        ({"policy": {"mode": "shadow", "rules": SHADOW_RULES}}, 1),
        (
            {
                "policy": {"mode": "enforce", "rules": [ANY_JOIN_START, SHADOW_RULES[1]]},
                "realtimekit": {"api_token": ""},
            },
            0,
        ),
    ],
    ids=["mode-shadow", "no-api-token"],
)
async def test_shadow_mode_decides_and_publishes_but_never_starts_or_stops(
    make_loop: Callable[..., Awaitable[Loop]], sections: dict[str, Any], lookups: int
) -> None:
    loop = await make_loop(**sections)
    router = await loop.start_router()
    async with loop.http.get(router.url + "/readyz") as response:
        assert (await response.json())["mode"] == "shadow"
    await wire(loop, router)
    steps = [
        {"action": "join", "participant": "ann", "preset": "host"},
        {"at": 0.5, "action": "leave", "participant": "ann"},
    ]
    await loop.play({"meeting_id": "m-shadow", "steps": steps})

    decisions = await loop.decisions("m-shadow", expect=2)
    assert [(d["action"], d["outcome"], d["mode"]) for d in decisions] == [
        ("start_recording", "shadow", "shadow"),
        ("stop_recording", "shadow", "shadow"),
    ]
    assert {d["rule"] for d in decisions} == {"hosts-start", "empty-stop"}
    calls = await loop.calls()
    assert [c for c in calls if c["method"] != "GET"] == []
    assert len([c for c in calls if c["call"] == "participants"]) == lookups
    assert await loop.recordings("m-shadow") == []
