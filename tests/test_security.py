"""Secrets stay secret (SPEC 8): a `router serve` process with known secret values (the API
token from `${CLOUDFLARE_API_TOKEN}`, an HMAC source secret from `${ROUTER_HMAC_SECRET}`,
storage credentials in a rule's `recording.storage_config`, a stream key in a delivered
webhook) is driven through decisions, RTK failures whose error messages echo the token and
the credentials, dead-letters and signature failures. Then no piece of any secret, and no
signature value, may be found in its log; no piece of a secret in the keys, values and headers
of the recordings, meetings, decisions and state topics, in the headers of the dead-letter
topic, in `/metrics` or in `/readyz`.

Not checked, by design: the values of the webhooks log and of the dead-letter topic, which are
the raw bodies RTK sent, secrets included (the README says to restrict both by ACL). The
Kafka SASL password cannot be exercised against the embedded broker, which has no SASL."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from router.clock import now, wall_seconds
from router.core.signature import HMAC_HEADER, RSA_HEADER, hmac_sign, rsa_sign
from router.kafka import Consumed
from router.samples import encode_payload, sample_payload
from tests.plugins.e2e import Loop, eventually, wire

pytestmark = pytest.mark.slow

API_TOKEN = "cf-token-Q7vXk2M9pLw4RtZ8"
HMAC_SECRET = "hmac-secret-Jd83kQm1Zp0sVx6"
STORAGE_ACCESS_KEY = "AKIAW3X7PZ2Q9RDK4MJT"
STORAGE_SECRET = "s3-secret-Hq2m8ZfLw0Xr5NcV7bPy"
STREAM_KEY = "live_sk_R4nd0mStr34mK3yT9xQ"
SECRETS = {
    "api token": API_TOKEN,
    "hmac secret": HMAC_SECRET,
    "storage access key": STORAGE_ACCESS_KEY,
    "storage secret": STORAGE_SECRET,
    "stream key": STREAM_KEY,
}
PIECE = 10  # a secret cut short still leaks: any 10 characters of one count

RTK_PATH, INTERNAL_PATH = "/webhooks/realtimekit", "/webhooks/internal"
RECORDED, DOWN, REFUSED = "m-secure", "m-rtk-down", "m-rtk-refuses"
LIVE, BROKEN = "m-live", "m-broken"
# What a careless RTK might answer: the request's credentials echoed in its error message.
ECHO = f"bad credentials: token {API_TOKEN}, key {STORAGE_ACCESS_KEY}, secret {STORAGE_SECRET}"
# Puts the token across the point where the client shortens RTK's messages (120 characters).
PADDING = "x" * (120 - len("bad credentials: token ") - 8)

POLICY = {
    "rules": [
        {
            "name": "record-everyone",
            "on": "meeting.participantJoined",
            "action": "start_recording",
            "recording": {
                "file_name_prefix": "{meeting.id}",
                "storage_config": {
                    "type": "aws",
                    "bucket": "recordings",
                    "region": "eu-west-1",
                    "access_key": STORAGE_ACCESS_KEY,
                    "secret": STORAGE_SECRET,
                },
            },
        },
        {
            "name": "stop-when-empty",
            "on": "meeting.participantLeft",
            "when": {"session.participants": {"lte": 0}},
            "action": "stop_recording",
        },
    ]
}
FAULTS = [
    {
        "status": 500,
        "count": 1000,
        "calls": ["start_recording"],
        "meetings": [DOWN],
        "message": ECHO,
    },
    {
        "status": 403,
        "count": 1000,
        "calls": ["start_recording"],
        "meetings": [REFUSED],
        "message": PADDING + ECHO,
    },
]


def pieces(value: str, size: int) -> set[str]:
    return {value[i : i + size] for i in range(max(1, len(value) - size + 1))}


def leaked(text: str, secrets: Mapping[str, str], size: int = PIECE) -> list[str]:
    """The names of the secrets some piece of which is in `text`."""
    return [name for name, value in secrets.items() if any(p in text for p in pieces(value, size))]


def message_text(records: Iterable[Consumed], *, values: bool = True) -> str:
    """Keys, headers and (unless told not to) values of messages, as one text to search."""
    parts = []
    for record in records:
        parts.append((record.key or b"").decode("utf-8", "replace"))
        parts += [f"{k}={v.decode('utf-8', 'replace')}" for k, v in record.headers]
        if values:
            parts.append((record.value or b"").decode("utf-8", "replace"))
    return "\n".join(parts)


@dataclass
class Sender:
    """Posts to one router and remembers every signature value it sent."""

    loop: Loop
    url: str
    signatures: list[str] = field(default_factory=list)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        self.signatures += [v for k, v in headers.items() if k in (RSA_HEADER, HMAC_HEADER)]
        async with self.loop.http.post(self.url + path, data=body, headers=headers) as response:
            return response.status

    async def rtk(self, payload: Mapping[str, Any]) -> int:
        body = encode_payload(payload)
        signature = rsa_sign(self.loop.emulator.state.private_key, body)
        return await self.post(RTK_PATH, body, {RSA_HEADER: signature})


async def drive(loop: Loop, sender: Sender) -> None:
    """Everything that could carry a secret somewhere: decisions with the credentials, RTK
    failures echoing them, a stream key delivered and dead-lettered, signature failures."""
    for fault in FAULTS:
        await loop.control("POST", "/faults", fault)
    join = {"action": "join", "participant": "ann"}
    # One is recorded; RTK fails the others' starts: retried until the budget is spent, or
    # refused at once.
    for meeting_id in (RECORDED, DOWN, REFUSED):
        await loop.play({"meeting_id": meeting_id, "steps": [join]})

    live = sample_payload(
        "livestreaming.statusUpdate", now=now(), meeting_id=LIVE, streamKey=STREAM_KEY
    )
    broken = {  # a recording id RTK would never send: dead-lettered at parse
        "event": "recording.statusUpdate",
        "meeting": {"id": BROKEN},
        "recording": {"id": {"streamKey": STREAM_KEY}},
        "streamKey": STREAM_KEY,
    }
    assert await sender.rtk(live) == 200
    assert await sender.rtk(broken) == 200

    body = encode_payload(
        {"event": "internal.audit", "meetingId": "m-audit", "token": API_TOKEN, "key": STREAM_KEY}
    )
    stamp = int(wall_seconds())
    forged = {
        "rsa-of-another-body": (RTK_PATH, rsa_sign(loop.emulator.state.private_key, b"{}")),
        "rsa-garbage": (RTK_PATH, "bm90IGEgc2lnbmF0dXJl"),
        "hmac-wrong-secret": (INTERNAL_PATH, hmac_sign("x" + HMAC_SECRET, body, timestamp=stamp)),
        "hmac-expired": (INTERNAL_PATH, hmac_sign(HMAC_SECRET, body, timestamp=stamp - 3600)),
    }
    for name, (path, signature) in forged.items():
        header = RSA_HEADER if path == RTK_PATH else HMAC_HEADER
        assert await sender.post(path, body, {header: signature}) == 401, name
    signature = hmac_sign(HMAC_SECRET, body, timestamp=stamp)
    assert await sender.post(INTERNAL_PATH, body, {HMAC_HEADER: signature}) == 200

    # Once it records, the last one leaves: the recording is stopped and uploaded.
    await eventually(lambda: _recording(loop, RECORDED), timeout=30)
    await loop.play({"meeting_id": RECORDED, "steps": [{"action": "leave", "participant": "ann"}]})


async def test_no_secret_or_signature_in_logs_topics_or_metrics(
    make_loop: Callable[..., Awaitable[Loop]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("ROUTER_HMAC_SECRET", HMAC_SECRET)
    loop = await make_loop(
        emulator_options={"api_token": API_TOKEN},
        # The router process reads both from its environment, as the shipped config does.
        realtimekit={"api_token": "${CLOUDFLARE_API_TOKEN:-}", "retry_seconds": 2},
        sources=[
            {
                "name": "internal",
                "path": INTERNAL_PATH,
                "signature": {"scheme": "hmac", "secrets": ["${ROUTER_HMAC_SECRET:-unset}"]},
            }
        ],
        policy=POLICY,
    )
    router = await loop.start_process()
    await router.wait_ready(loop.http)
    await wire(loop, router)
    sender = Sender(loop, router.url)

    await drive(loop, sender)
    expected = {RECORDED: 2, DOWN: 1, REFUSED: 1}
    decisions = await eventually(lambda: _decisions(loop, expected), timeout=60)
    dead = await eventually(lambda: _at_least(loop, "dead_letter", 3), timeout=30)
    await eventually(lambda: _at_least(loop, "recordings", 4), timeout=30)  # INVOKED..UPLOADED
    async with loop.http.get(router.url + "/metrics") as response:
        metrics = await response.text()
    async with loop.http.get(router.url + "/readyz") as response:
        readiness = await response.text()
    assert await router.terminate() == 0
    log = router.log_file.read_text(errors="replace")

    # The run did what it is meant to: the token worked, RTK's echo was met and retried,
    # both failures and the broken event were dead-lettered, the secrets reached the router.
    assert {
        (RECORDED, "started"),
        (RECORDED, "stopped"),
        (DOWN, "failed"),
        (REFUSED, "failed"),
    } <= {(d["meeting_id"], d["outcome"]) for d in decisions}
    assert "RTK call failed; retrying" in log
    stages = sorted(dict(m.headers)["router-stage"].decode() for m in dead)
    assert stages == ["effects", "effects", "parse"], stages
    logged = await loop.topic("webhooks")
    assert STREAM_KEY in message_text(logged)
    meetings = [json.loads(r.value or b"{}") for r in await loop.topic("meetings")]
    assert any(m["type"] == "livestream.status_changed" for m in meetings)

    # Nothing of a secret outside the raw bodies.
    places = {
        "log": log,
        "metrics": metrics,
        "readyz": readiness,
        "dead-letter keys and headers": message_text(dead, values=False),
    }
    for name in ("recordings", "meetings", "decisions", "state"):
        places[f"topic {name}"] = message_text(await loop.topic(name))
    for place, text in places.items():
        assert not leaked(text, SECRETS), (place, leaked(text, SECRETS))
    # No signature in the log: those sent here, and those of the emulator's deliveries.
    signatures = sender.signatures + [
        v.decode() for r in logged for k, v in r.headers if k == RSA_HEADER
    ]
    assert len(signatures) >= 10
    in_log = [s for s in signatures if any(p in log for p in pieces(s, 24))]
    assert not in_log, f"{len(in_log)} of {len(signatures)} signature values are in the log"


async def _decisions(loop: Loop, expected: Mapping[str, int]) -> list[dict[str, Any]] | None:
    """Every decision, once each meeting of `expected` has at least that many."""
    decisions = [json.loads(r.value or b"{}") for r in await loop.topic("decisions", timeout=5)]
    counts = {m: sum(d["meeting_id"] == m for d in decisions) for m in expected}
    return decisions if all(counts[m] >= n for m, n in expected.items()) else None


async def _recording(loop: Loop, meeting_id: str) -> bool:
    return any(r["status"] == "RECORDING" for r in await loop.recordings(meeting_id))


async def _at_least(loop: Loop, topic: str, count: int) -> list[Consumed] | None:
    records = await loop.topic(topic, timeout=5)
    return records if len(records) >= count else None


def test_secret_pieces_are_found_in_text() -> None:
    """The leak check itself: a secret cut short, or split into a message, is still found."""
    assert leaked(f"token={API_TOKEN[:12]}…", SECRETS) == ["api token"]
    assert leaked("nothing to see", SECRETS) == []
