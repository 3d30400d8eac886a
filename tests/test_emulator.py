"""The RTK emulator over real HTTP: its API and checks, the recording lifecycle with signed
webhooks, scripted meetings, the control API, the `router emulate` command, and the sample
payloads it is built from."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from router.cli import main
from router.core.delivery import meeting_key
from router.core.signature import load_private_key, load_public_key, rsa_verify
from router.emulator import RunningEmulator
from router.emulator.config import MAX_REQUEST_BYTES, MAX_SEED_BYTES
from router.realtimekit import RtkClient
from router.samples import KNOWN_EVENTS, encode_payload, sample_payload, webhook_headers
from tests.plugins.e2e import eventually
from tests.plugins.emulator import Control, MakeClient, StartEmulator, WebhookReceiver

NOW = dt.datetime(2026, 6, 3, 10, 5, tzinfo=dt.UTC)


async def public_key_pem(http: aiohttp.ClientSession, emulator: RunningEmulator) -> str:
    async with http.get(emulator.public_key_url) as response:
        body = await response.json()
    pem: str = body["data"]["publicKey"]
    return pem


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def hooked(
    start_emulator: StartEmulator, webhook_receiver: WebhookReceiver, http: aiohttp.ClientSession
) -> Control:
    """An emulator that sends its webhooks to the test receiver."""
    return Control(http, await start_emulator(webhook_url=webhook_receiver.url))


# The well-known key and the API's gate


@pytest.mark.parametrize("escaped", [False, True], ids=["pem", "escaped-newlines"])
async def test_the_public_key_is_served(
    start_emulator: StartEmulator,
    http: aiohttp.ClientSession,
    emulator_key_pem: bytes,
    escaped: bool,
) -> None:
    emulator = await start_emulator(escape_public_key=escaped)

    async with http.get(emulator.public_key_url) as response:
        body = await response.json()

    assert body["success"] is True
    assert body["message"] == ""
    pem = body["data"]["publicKey"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert ("\\n" in pem) is escaped
    assert ("\n" in pem) is not escaped
    signed = webhook_headers(load_private_key(emulator_key_pem), b"{}")
    rsa_verify([load_public_key(pem)], signed["rtk-signature"], b"{}")


@pytest.mark.parametrize(
    ("account", "app", "token", "status"),
    [
        (None, None, "wrong", 401),
        (None, None, "", 401),
        ("other-account", None, None, 404),
        (None, "other-app", None, 404),
        (None, None, None, 404),  # authorised, but no active recording
    ],
    ids=["wrong-token", "no-token", "wrong-account", "wrong-app", "authorised"],
)
async def test_every_call_checks_token_and_ids(
    control: Control, account: str | None, app: str | None, token: str | None, status: int
) -> None:
    config = control.emulator.config
    url = (
        f"{control.emulator.base_url}/client/v4/accounts/{account or config.account_id}"
        f"/realtime/kit/{app or config.app_id}/recordings/active-recording/m-1"
    )
    given = config.api_token if token is None else token
    async with control.session.get(url, headers={"Authorization": f"Bearer {given}"}) as response:
        body = await response.json()

    assert response.status == status
    assert body["success"] is False
    assert body["error"]["code"] == status
    assert body["error"]["message"]


# Recordings and their webhooks


async def test_a_recording_lifecycle_sends_signed_webhooks(
    hooked: Control, webhook_receiver: WebhookReceiver, make_client: MakeClient
) -> None:
    emulator = hooked.emulator
    client = make_client(emulator)
    recording = await client.start_recording("m-life", {})
    await wait_until(lambda: len(webhook_receiver.received) == 1)
    stopped = await client.stop_recording(recording.id)

    await webhook_receiver.wait_for(3)
    payloads = webhook_receiver.verified(await public_key_pem(hooked.session, emulator))

    assert stopped is not None
    assert stopped.status == "UPLOADING"
    assert [p["recording"]["status"] for p in payloads] == ["RECORDING", "UPLOADING", "UPLOADED"]
    for payload in payloads:
        assert payload["event"] == "recording.statusUpdate"
        assert payload["recording"]["id"] == payload["recording"]["recordingId"] == recording.id
        assert payload["recording"]["meetingId"] == "m-life"
        assert payload["recording"]["roomUUID"] == payload["meeting"]["sessionId"]
        assert payload["meeting"]["id"] == "m-life"
        assert payload["meeting"]["organizedBy"]["id"] == emulator.config.organization_id
    uploaded = payloads[-1]["recording"]
    assert uploaded["downloadUrl"].endswith(uploaded["outputFileName"])
    assert isinstance(uploaded["fileSize"], str)
    assert {"downloadUrlExpiry", "startedTime", "stoppedTime"} <= set(uploaded)
    assert "downloadUrl" not in payloads[0]["recording"]
    headers = [d.headers for d in webhook_receiver.received]
    assert {h["rtk-webhook-id"] for h in headers} == {emulator.config.webhook_id}
    assert len({h["rtk-uuid"] for h in headers}) == 3
    assert all(uuid.UUID(h["rtk-uuid"]).version == 4 for h in headers)
    assert all(h["Content-Type"] == "application/json" for h in headers)
    assert webhook_receiver.received[0].body == encode_payload(payloads[0])


async def test_pause_resume_and_invalid_actions(
    hooked: Control, webhook_receiver: WebhookReceiver
) -> None:
    _, started, _ = await hooked.api("POST", "/recordings", {"meeting_id": "m-p"})
    path = f"/recordings/{started['data']['id']}"
    await webhook_receiver.wait_for(1)

    answers = [
        (await hooked.api("PUT", path, {"action": action}))[0:2]
        for action in ("pause", "pause", "resume", "rewind", "stop", "stop")
    ]
    status, got, _ = await hooked.api("GET", path)

    assert [a[0] for a in answers] == [200, 400, 200, 400, 200, 400]
    assert answers[0][1]["data"]["status"] == "PAUSED"
    assert answers[3][1]["error"]["message"] == "action must be one of stop, pause, resume"
    assert (status, got["data"]["status"]) == (200, "UPLOADING")
    await webhook_receiver.wait_for(5)
    statuses = [p["recording"]["status"] for p in (d.payload for d in webhook_receiver.received)]
    assert statuses == ["RECORDING", "PAUSED", "RECORDING", "UPLOADING", "UPLOADED"]


async def test_max_seconds_stops_a_recording(
    hooked: Control, webhook_receiver: WebhookReceiver
) -> None:
    _, started, _ = await hooked.api(
        "POST", "/recordings", {"meeting_id": "m-x", "max_seconds": 0.1}
    )

    await webhook_receiver.wait_for(3)

    _, got, _ = await hooked.api("GET", f"/recordings/{started['data']['id']}")
    assert got["data"]["status"] == "UPLOADED"
    assert got["data"]["stop_reason"] == {"reason": "MAX_SECONDS"}


@pytest.mark.parametrize(
    ("answers", "received", "final"),
    [([500, 502], 3, 200), ([400], 1, 400), ([503] * 10, 4, 503)],
    ids=["5xx-retried", "4xx-given-up", "attempts-run-out"],
)
async def test_webhook_deliveries_retry_like_rtk(
    hooked: Control,
    webhook_receiver: WebhookReceiver,
    answers: list[int],
    received: int,
    final: int,
) -> None:
    webhook_receiver.answers = list(answers)
    _, started, _ = await hooked.api("POST", "/recordings", {"meeting_id": "m-w"})
    await webhook_receiver.wait_for(received)
    await hooked.emulator.state.sender.drain()

    _, log = await hooked.request("GET", "/webhooks")

    assert len(webhook_receiver.received) == received
    assert len({d.headers["rtk-uuid"] for d in webhook_receiver.received}) == 1
    assert [(d["event"], d["status"], d["attempts"]) for d in log] == [
        ("recording.statusUpdate", final, received)
    ]
    assert log[0]["key"] == started["data"]["id"]


async def test_deliveries_stay_in_order_while_one_is_retried(
    hooked: Control, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.answers = [500, 500]
    _, started, _ = await hooked.api("POST", "/recordings", {"meeting_id": "m-o"})
    recording = hooked.emulator.state.recordings.recordings[started["data"]["id"]]
    await wait_until(lambda: recording.status == "RECORDING")
    await hooked.api("PUT", f"/recordings/{recording.id}", {"action": "stop"})

    await webhook_receiver.wait_for(5)
    await hooked.emulator.state.sender.drain()

    statuses = [d.payload["recording"]["status"] for d in webhook_receiver.received]
    assert statuses == ["RECORDING", "RECORDING", "RECORDING", "UPLOADING", "UPLOADED"]


async def test_forcing_a_status_sends_its_webhook(
    hooked: Control, webhook_receiver: WebhookReceiver
) -> None:
    _, started, _ = await hooked.api("POST", "/recordings", {"meeting_id": "m-f"})
    recording_id = started["data"]["id"]

    forced = await hooked.request(
        "POST", f"/recordings/{recording_id}/status", {"status": "ERRORED"}
    )
    unknown = await hooked.request("POST", "/recordings/nope/status", {"status": "ERRORED"})
    invalid = await hooked.request("POST", f"/recordings/{recording_id}/status", {"status": "DONE"})

    await webhook_receiver.wait_for(1)
    await asyncio.sleep(0.1)  # the start delay has passed: forcing cancelled RECORDING
    assert [d.payload["recording"]["status"] for d in webhook_receiver.received] == ["ERRORED"]
    assert (forced[0], forced[1]["history"]) == (200, ["INVOKED", "ERRORED"])
    assert unknown[0] == 404
    assert invalid[0] == 400


# Scripted meetings


async def test_a_scripted_meeting_delivers_joins_and_leaves_in_order(
    hooked: Control, webhook_receiver: WebhookReceiver, make_client: MakeClient
) -> None:
    script = {
        "meeting_id": "m-s",
        "title": "Board review",
        "steps": [
            {"at": 0.0, "action": "join", "participant": "ann", "name": "Ann", "preset": "host"},
            {"at": 0.05, "action": "join", "participant": "bob", "preset": "guest"},
            {"at": 0.1, "action": "leave", "participant": "ann"},
            {"at": 0.15, "action": "leave", "participant": "bob"},
        ],
    }

    status, answer = await hooked.request("POST", "/meetings/play", script)
    await webhook_receiver.wait_for(6)
    payloads = webhook_receiver.verified(await public_key_pem(hooked.session, hooked.emulator))

    assert (status, answer) == (202, {"meeting_id": "m-s"})
    events = [(p["event"], p.get("participant", {}).get("customParticipantId")) for p in payloads]
    assert events == [
        ("meeting.started", None),
        ("meeting.participantJoined", "ann"),
        ("meeting.participantJoined", "bob"),
        ("meeting.participantLeft", "ann"),
        ("meeting.participantLeft", "bob"),
        ("meeting.ended", None),
    ]
    assert len({p["meeting"]["sessionId"] for p in payloads}) == 1
    assert {p["meeting"]["title"] for p in payloads} == {"Board review"}
    assert payloads[1]["participant"]["userDisplayName"] == "Ann"
    assert payloads[1]["participant"]["peerId"] == payloads[3]["participant"]["peerId"]
    assert payloads[3]["participant"]["joinedAt"] == payloads[1]["participant"]["joinedAt"]
    assert "leftAt" in payloads[3]["participant"]
    assert payloads[-1]["reason"] == "ALL_PARTICIPANTS_LEFT"
    client = make_client(hooked.emulator)
    assert await client.preset_of("m-s", "ann") == "host"


async def test_ending_a_meeting_leaves_every_peer_and_a_new_join_starts_a_session(
    hooked: Control, webhook_receiver: WebhookReceiver
) -> None:
    script = {
        "meeting_id": "m-e",
        "steps": [
            {"action": "join", "participant": "ann", "peer_id": "phone"},
            {"action": "join", "participant": "ann", "peer_id": "laptop"},
            {"at": 0.05, "action": "end", "reason": "HOST_ENDED_MEETING"},
            {"at": 0.1, "action": "join", "participant": "bob"},
        ],
    }

    await hooked.request("POST", "/meetings/play", script)
    await webhook_receiver.wait_for(8)

    payloads = [d.payload for d in webhook_receiver.received]
    assert [(p["event"], p.get("participant", {}).get("peerId")) for p in payloads[:6]] == [
        ("meeting.started", None),
        ("meeting.participantJoined", "phone"),
        ("meeting.participantJoined", "laptop"),
        ("meeting.participantLeft", "phone"),
        ("meeting.participantLeft", "laptop"),
        ("meeting.ended", None),
    ]
    assert payloads[5]["reason"] == "HOST_ENDED_MEETING"
    assert [p["event"] for p in payloads[6:]] == ["meeting.started", "meeting.participantJoined"]
    assert payloads[6]["meeting"]["sessionId"] != payloads[0]["meeting"]["sessionId"]


@pytest.mark.parametrize(
    ("steps", "stopped"),
    [
        ([{"action": "leave", "participant": "ann"}], True),
        (
            [
                {"action": "leave", "participant": "ann"},
                {"at": 0.02, "action": "join", "participant": "ann"},
            ],
            False,
        ),
    ],
    ids=["left-empty", "rejoined-in-time"],
)
async def test_an_empty_meeting_stops_its_recordings(
    start_emulator: StartEmulator,
    http: aiohttp.ClientSession,
    steps: list[dict[str, Any]],
    stopped: bool,
) -> None:
    control = Control(http, await start_emulator(idle_stop_seconds=0.1))
    join = {"steps": [{"action": "join", "participant": "ann"}], "meeting_id": "m-i"}
    await control.request("POST", "/meetings/play", join)
    await control.emulator.state.plays_done()
    _, started, _ = await control.api("POST", "/recordings", {"meeting_id": "m-i"})
    script = {"meeting_id": "m-i", "end_when_empty": False, "steps": steps}

    await control.request("POST", "/meetings/play", script)
    await asyncio.sleep(0.3)

    _, got, _ = await control.api("GET", f"/recordings/{started['data']['id']}")
    if stopped:
        assert got["data"]["status"] == "UPLOADED"
        assert got["data"]["stop_reason"] == {"reason": "ALL_PEERS_LEFT"}
    else:
        assert got["data"]["status"] == "RECORDING"


# The control API


@pytest.mark.parametrize(
    ("spec", "calls", "expected"),
    [
        ({"status": 500, "count": 2}, ["active", "active", "active"], [500, 500, 404]),
        (
            {"status": 503, "count": 1, "calls": ["participants"]},
            ["active", "participants", "participants"],
            [404, 503, 200],
        ),
        ({"status": 429, "count": 1, "retry_after": 3}, ["participants"] * 2, [429, 200]),
        (
            {"status": 500, "count": 1, "meetings": ["m-2"]},
            ["active", "participants", "active-m-2", "active-m-2"],
            [404, 200, 500, 404],
        ),
    ],
    ids=["next-n-calls", "only-named-calls", "429-retry-after", "only-named-meetings"],
)
async def test_fault_switches(
    control: Control, spec: dict[str, Any], calls: list[str], expected: list[int]
) -> None:
    paths = {
        "active": "/recordings/active-recording/m-1",
        "participants": "/meetings/m-1/participants",
        "active-m-2": "/recordings/active-recording/m-2",
    }
    assert (await control.request("POST", "/faults", spec))[0] == 201

    answers = [await control.api("GET", paths[c]) for c in calls]

    assert [a[0] for a in answers] == expected
    if spec.get("retry_after"):
        assert answers[0][2]["Retry-After"] == "3"
    _, faults = await control.request("GET", "/faults")
    assert faults[0]["remaining"] == 0
    assert (await control.request("DELETE", "/faults"))[0] == 200
    assert (await control.request("GET", "/faults"))[1] == []


async def test_latency_delays_only_the_api(control: Control) -> None:
    await control.request("PUT", "/latency", {"ms": 200, "calls": ["participants"]})

    began = time.monotonic()
    await control.api("GET", "/meetings/m-1/participants")
    slow = time.monotonic() - began
    began = time.monotonic()
    await control.api("GET", "/recordings/active-recording/m-1")
    await control.request("GET", "/calls")
    fast = time.monotonic() - began

    assert slow >= 0.2
    assert fast < 0.2
    assert (await control.request("GET", "/latency"))[1] == {"ms": 200, "calls": ["participants"]}


async def test_the_call_log_records_and_clears(control: Control) -> None:
    await control.api("POST", "/recordings", {"meeting_id": "m-l"})
    await control.api("GET", "/recordings/active-recording/m-l")
    await control.api("PUT", "/recordings/nope", {"action": "pause"})

    calls = await control.calls()

    assert [(c["method"], c["call"], c["status"], c["meeting_id"]) for c in calls] == [
        ("POST", "start_recording", 201, "m-l"),
        ("GET", "active_recording", 200, None),
        ("PUT", "pause_recording", 404, None),
    ]
    assert calls[0]["path"].endswith("/recordings")
    assert calls[0]["at"] <= calls[1]["at"] <= calls[2]["at"]
    await control.request("DELETE", "/calls")
    assert await control.calls() == []


async def test_reset_forgets_recordings_participants_faults_and_calls(control: Control) -> None:
    await control.request(
        "POST",
        "/meetings/m-r/participants",
        {"participants": [{"custom_participant_id": "ann", "preset_name": "host"}]},
    )
    await control.api("POST", "/recordings", {"meeting_id": "m-r"})
    await control.request("POST", "/faults", {"status": 500, "count": 5})
    await control.request("PUT", "/latency", {"ms": 10})

    assert (await control.request("POST", "/reset"))[0] == 200

    assert (await control.request("GET", "/recordings"))[1] == []
    assert (await control.request("GET", "/meetings"))[1] == []
    assert (await control.request("GET", "/faults"))[1] == []
    assert (await control.request("GET", "/latency"))[1] == {"ms": 0.0, "calls": None}
    assert await control.calls() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/faults", {"status": 200}),
        ("POST", "/faults", {"status": 500, "typo": 1}),
        ("PUT", "/latency", {"ms": -1}),
        ("POST", "/meetings/play", {"steps": [{"action": "join"}]}),
        ("POST", "/meetings/m/participants", {"participants": [{"preset_name": "x"}]}),
    ],
    ids=["fault-not-an-error", "unknown-key", "negative-latency", "join-nobody", "no-custom-id"],
)
async def test_control_refuses_bad_bodies(
    control: Control, method: str, path: str, body: Any
) -> None:
    status, answer = await control.request(method, path, body)

    assert status == 400
    assert answer["error"]


async def test_oversized_request_bodies_are_refused_naming_the_limit(control: Control) -> None:
    emulator = control.emulator
    big = json.dumps({"meeting_id": "m", "pad": "x" * MAX_REQUEST_BYTES}).encode()
    # (an io.BytesIO each time: aiohttp warns about sending large raw bytes)
    auth = {"Authorization": f"Bearer {emulator.config.api_token}"}
    async with control.session.post(
        emulator.api_url + "/recordings", data=io.BytesIO(big), headers=auth
    ) as response:
        assert response.status == 413
        answer = await response.json()
    assert answer["error"]["message"] == f"Request body larger than {MAX_REQUEST_BYTES} bytes"
    async with control.session.post(
        emulator.control_url + "/faults", data=io.BytesIO(big)
    ) as response:
        assert response.status == 413
        assert str(MAX_REQUEST_BYTES) in (await response.json())["error"]
    assert (await control.request("GET", "/recordings"))[1] == []
    assert (await control.request("GET", "/faults"))[1] == []


async def test_a_huge_webhook_answer_is_not_read_whole(
    control: Control, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    """A target answering each delivery with an endless body: the delivery's status counts,
    the emulator reads no more than its limit."""
    chunk = b"x" * 65_536
    cut: list[int] = []  # how much was written when the emulator hung up

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        written = 0
        try:
            for _ in range(512):  # 32 MiB
                await response.write(chunk)
                written += len(chunk)
        except ConnectionError:
            pass
        finally:  # (also when the test server cancels the handler of a closed connection)
            cut.append(written)
        return response

    target = web.Application()
    target.router.add_post("/hook", endless)
    server = await aiohttp_server(target)
    await control.request("PUT", "/webhooks/url", {"url": str(server.make_url("/hook"))})
    await control.request(
        "POST", "/meetings/play", {"steps": [{"action": "join", "participant": "ann"}]}
    )

    async def delivered() -> list[Any] | None:
        rows = (await control.request("GET", "/webhooks"))[1]
        return rows if rows and all(r["status"] == 200 for r in rows) else None

    rows = await eventually(delivered, timeout=20)
    assert all(r["attempts"] == 1 for r in rows)
    await eventually(lambda: _true(len(cut) == len(rows)), timeout=20)
    assert max(cut) < 8 * 1_048_576  # not read whole (what is written lingers in buffers)


async def _true(value: bool) -> bool:
    return value


async def test_the_webhook_url_can_be_set_at_run_time(
    control: Control, webhook_receiver: WebhookReceiver
) -> None:
    await control.request("PUT", "/webhooks/url", {"url": webhook_receiver.url})
    await control.request(
        "POST", "/meetings/play", {"steps": [{"action": "join", "participant": "ann"}]}
    )

    await webhook_receiver.wait_for(2)

    assert (await control.request("GET", ""))[1]["webhook_url"] == webhook_receiver.url


# `router emulate`


async def test_router_emulate_serves_a_seed_and_stops_on_sigterm(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "participants:\n"
        "  m-cli:\n"
        "    - {custom_participant_id: ann, preset_name: host, name: Ann}\n",
        encoding="utf-8",
    )
    code = (
        "import argparse, sys\n"
        "from router.emulator.cli import add_arguments, run\n"
        "parser = argparse.ArgumentParser()\n"
        "add_arguments(parser)\n"
        "sys.exit(run(parser.parse_args(sys.argv[1:])))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "--port",
        "0",
        "--seed",
        str(seed),
        "--token",
        "cli-token",
        "--escape-public-key",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Ctrl-C"):
                lines.append((await process.stdout.readline()).decode().strip())
        shown = dict(line.split(": ", 1) for line in lines if ": " in line)
        base = shown["realtimekit.api_base_url"].strip()
        account = shown["realtimekit.account_id"].strip()
        app = shown["realtimekit.app_id"].strip()
        assert shown["realtimekit.api_token"].strip() == "cli-token"

        async with http.get(shown["public_key_url"].strip()) as response:
            load_public_key((await response.json())["data"]["publicKey"])
        async with RtkClient(
            base_url=base, account_id=account, app_id=app, api_token="cli-token"
        ) as client:
            assert await client.preset_of("m-cli", "ann") == "host"

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            out, _ = await process.communicate()
        assert process.returncode == 0
        assert b"emulator stopped" in out
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("seed_text", "problem"),
    [
        ("participants: {m: [{preset_name: host}]}", "custom_participant_id"),
        ("meetings: [{steps: [{action: dance}]}]", "action"),
        ("participants: [", "seed.yaml"),
        ("# " + "x" * MAX_SEED_BYTES, f"larger than {MAX_SEED_BYTES} bytes"),
    ],
    ids=["participant-without-id", "unknown-action", "not-yaml", "too-large"],
)
def test_router_emulate_refuses_a_bad_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed_text: str, problem: str
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(seed_text, encoding="utf-8")

    assert main(["emulate", "--port", "0", "--seed", str(seed)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("router: ")
    assert problem in line


# Sample payloads


@pytest.mark.parametrize("event", KNOWN_EVENTS, ids=KNOWN_EVENTS)
def test_sample_payloads_are_signed_and_keyed_by_meeting(
    event: str, emulator_key_pem: bytes
) -> None:
    private_key = load_private_key(emulator_key_pem)
    payload = sample_payload(event, now=NOW, meeting_id="m-1", session_id="s-1")
    body = encode_payload(payload)

    headers = webhook_headers(private_key, body, delivery_id="d-1", webhook_id="w-1")

    assert payload["event"] == event
    assert meeting_key(json.loads(body)) == "m-1"
    rsa_verify([private_key.public_key()], headers["rtk-signature"], body)
    assert (headers["rtk-uuid"], headers["rtk-webhook-id"]) == ("d-1", "w-1")
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("event", "present", "absent"),
    [
        ("meeting.participantJoined", {"participant.joinedAt"}, {"participant.leftAt"}),
        ("meeting.participantLeft", {"participant.leftAt", "participant.joinedAt"}, set()),
        ("meeting.ended", {"reason", "meeting.endedAt"}, {"participant"}),
        ("meeting.chatSynced", {"meetingId", "sessionId", "chatDownloadUrl"}, {"meeting"}),
        ("livestreaming.statusUpdate", {"streamId", "streamKey", "playbackUrl"}, set()),
        ("meeting.transcript", {"transcriptDownloadUrl", "meeting.sessionId"}, set()),
        ("meeting.summary", {"summaryDownloadUrl", "meeting.organizedBy"}, {"meeting.title"}),
        ("recording.statusUpdate", {"recording.downloadUrl", "recording.fileSize"}, set()),
    ],
    ids=["joined", "left", "ended", "chat", "livestream", "transcript", "summary", "uploaded"],
)
def test_sample_payloads_have_rtk_shapes(event: str, present: set[str], absent: set[str]) -> None:
    payload = sample_payload(event, now=NOW, custom_participant_id="user-1", display_name="Ann")

    def has(dotted: str) -> bool:
        head, _, tail = dotted.partition(".")
        value = payload.get(head)
        return value is not None and (not tail or tail in value)

    assert all(has(field) for field in present), present
    assert not any(has(field) for field in absent), absent


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        ("INVOKED", set()),
        ("RECORDING", {"outputFileName", "startedTime"}),
        ("UPLOADING", {"outputFileName", "startedTime", "stoppedTime", "fileSize"}),
    ],
    ids=["invoked", "recording", "uploading"],
)
def test_sample_recordings_carry_the_fields_of_their_status(status: str, fields: set[str]) -> None:
    payload = sample_payload("recording.statusUpdate", now=NOW, recording={"status": status})

    base = {"id", "recordingId", "status", "meetingId", "organizationId", "roomUUID"}
    assert set(payload["recording"]) == base | fields
    assert "endedAt" not in payload["meeting"]


def test_sample_extra_fields_merge_and_unknown_events_are_refused() -> None:
    payload = sample_payload(
        "meeting.participantJoined",
        now=NOW,
        meeting_id="m-9",
        meeting={"title": "Board"},
        participant={"userDisplayName": "Bo"},
    )

    assert payload["meeting"]["title"] == "Board"
    assert payload["meeting"]["id"] == "m-9"
    assert payload["participant"]["userDisplayName"] == "Bo"
    assert payload["participant"]["joinedAt"] == "2026-06-03T10:05:00.000Z"
    with pytest.raises(ValueError, match="unknown RTK event"):
        sample_payload("meeting.exploded", now=NOW)
