"""What the emulator offers for reconciliation: the active-session API answering from its
meetings, and deliveries lost for good by event type, meeting or chance (control API, seed
file and `router emulate` options)."""

from __future__ import annotations

import argparse

import pytest

from router.cli import main as cli_main
from router.emulator import running_emulator
from router.emulator.cli import _config, add_arguments
from router.emulator.config import DropSpec, ScriptStep, Seed
from tests.plugins.emulator import Control, StartEmulator, WebhookReceiver


async def played(control: Control, script: dict[str, object]) -> None:
    assert (await control.request("POST", "/meetings/play", script))[0] == 202
    await control.emulator.state.plays_done()
    await control.emulator.state.sender.drain()


async def test_the_active_session_answers_from_the_meetings(control: Control) -> None:
    none = await control.api("GET", "/meetings/m-a/active-session")
    await played(
        control,
        {
            "meeting_id": "m-a",
            "title": "Standup",
            "steps": [
                {"action": "join", "participant": "ann"},
                {"action": "join", "participant": "bob"},
                {"action": "leave", "participant": "bob"},
            ],
        },
    )

    status, body, _ = await control.api("GET", "/meetings/m-a/active-session")

    assert none[0] == 404
    assert status == 200
    data = body["data"]
    session_id = control.emulator.state.meetings.meetings["m-a"].session_id
    assert data["id"] == session_id
    assert (data["associated_id"], data["status"], data["type"]) == ("m-a", "LIVE", "meeting")
    assert (data["live_participants"], data["max_concurrent_participants"]) == (1, 2)
    assert data["meeting_display_name"] == "Standup"
    assert {"started_at", "created_at", "updated_at", "organization_id"} <= data.keys()


async def test_an_ended_session_is_404_and_the_call_is_logged(control: Control) -> None:
    await played(
        control,
        {"meeting_id": "m-e", "steps": [{"action": "join", "participant": "a"}, {"action": "end"}]},
    )

    status, body, _ = await control.api("GET", "/meetings/m-e/active-session")
    wrong_token = await control.api("GET", "/meetings/m-e/active-session", token="nope")

    assert (status, body["success"]) == (404, False)
    assert wrong_token[0] == 401
    assert [c["call"] for c in await control.calls()] == ["active_session", "active_session"]


async def test_drops_lose_chosen_events_of_chosen_meetings(
    start_emulator: StartEmulator, webhook_receiver: WebhookReceiver, control: Control
) -> None:
    hooked = Control(control.session, await start_emulator(webhook_url=webhook_receiver.url))
    drop = {"events": ["meeting.participantJoined"], "meetings": ["m-lost"]}
    status, shown = await hooked.request("POST", "/webhooks/drops", drop)
    steps = [{"action": "join", "participant": "a"}, {"action": "join", "participant": "b"}]

    await played(hooked, {"meeting_id": "m-lost", "steps": steps})
    await played(hooked, {"meeting_id": "m-kept", "steps": steps})

    assert status == 201
    assert shown["events"] == ["meeting.participantJoined"]
    got = [(r.payload["meeting"]["id"], r.payload["event"]) for r in webhook_receiver.received]
    assert got == [
        ("m-lost", "meeting.started"),
        ("m-kept", "meeting.started"),
        ("m-kept", "meeting.participantJoined"),
        ("m-kept", "meeting.participantJoined"),
    ]
    _, log = await hooked.request("GET", "/webhooks")
    lost = [d for d in log if d["error"] == "dropped"]
    assert [(d["key"], d["event"], d["attempts"]) for d in lost] == [
        ("m-lost", "meeting.participantJoined", 0)
    ] * 2
    _, drops = await hooked.request("GET", "/webhooks/drops")
    assert drops[0]["dropped"] == 2
    assert (await hooked.request("DELETE", "/webhooks/drops"))[0] == 200
    assert (await hooked.request("GET", "/webhooks/drops"))[1] == []


async def test_a_drop_by_chance_is_repeatable_and_counted(
    start_emulator: StartEmulator, webhook_receiver: WebhookReceiver, control: Control
) -> None:
    hooked = Control(control.session, await start_emulator(webhook_url=webhook_receiver.url))
    await hooked.request("POST", "/webhooks/drops", {"probability": 0.5, "seed": 3, "count": 4})
    steps = [{"action": "join", "participant": f"u-{n}"} for n in range(20)]

    await played(hooked, {"meeting_id": "m-p", "steps": steps})

    _, log = await hooked.request("GET", "/webhooks")
    lost = [d for d in log if d["error"] == "dropped"]
    assert len(lost) == 4
    assert len(webhook_receiver.received) == 21 - 4
    expected = [d["event"] for d in log]
    # The same seed loses the same deliveries of the same script.
    await hooked.request("POST", "/reset")
    await hooked.request("POST", "/webhooks/drops", {"probability": 0.5, "seed": 3, "count": 4})
    await played(hooked, {"meeting_id": "m-p", "steps": steps})
    _, again = await hooked.request("GET", "/webhooks")
    assert [d["event"] for d in again] == expected
    assert [d["error"] for d in again] == [d["error"] for d in log]


async def test_a_seed_file_drops_too(
    start_emulator: StartEmulator, webhook_receiver: WebhookReceiver, control: Control
) -> None:
    seed = Seed(drops=[DropSpec(events=["meeting.ended"])])
    hooked = Control(
        control.session, await start_emulator(webhook_url=webhook_receiver.url, seed=seed)
    )
    steps = [{"action": "join", "participant": "a"}, {"action": "leave", "participant": "a"}]

    await played(hooked, {"meeting_id": "m-s", "steps": steps})
    await hooked.request("POST", "/reset")  # the seed's drops come back with it

    events = [r.payload["event"] for r in webhook_receiver.received]
    assert events == [
        "meeting.started",
        "meeting.participantJoined",
        "meeting.participantLeft",
    ]
    assert len((await hooked.request("GET", "/webhooks/drops"))[1]) == 1


@pytest.mark.parametrize(
    "body",
    [{"probability": 0}, {"count": 0}, {"events": "meeting.ended"}, {"typo": 1}],
    ids=["no-chance", "no-count", "not-a-list", "unknown-key"],
)
async def test_bad_drops_are_refused(control: Control, body: dict[str, object]) -> None:
    status, _ = await control.request("POST", "/webhooks/drops", body)

    assert status == 400
    assert (await control.request("GET", "/webhooks/drops"))[1] == []


def test_router_emulate_refuses_a_drop_probability_out_of_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["emulate", "--drop-webhooks", "all", "--drop-probability", "1.5"]

    assert cli_main(args) == 2  # (a usage error: one line, exit 2)
    assert "--drop-probability" in capsys.readouterr().err


async def test_router_emulate_drops_what_it_is_told(webhook_receiver: WebhookReceiver) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--drop-webhooks", "meeting.participantJoined", "--webhook-url", webhook_receiver.url]
    )

    async with running_emulator(_config(args)) as emulator:
        emulator.state.meetings.join("m-c", ScriptStep(action="join", participant="ann"))
        await emulator.state.sender.drain()

    assert [r.payload["event"] for r in webhook_receiver.received] == ["meeting.started"]
