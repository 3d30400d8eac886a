"""No secret leaves the raw webhooks log (SPEC 6.2, 8): with the API token, storage credentials
in a rule's `recording.storage_config`, a livestream's stream key and ingest server, and an
HMAC source secret all known, none of them (nor a piece of one) appears in any message of the
shared topics, dead-letter or state, in `/metrics`, or in the decision of a start that RTK
refused with an error echoing what it was sent."""

from __future__ import annotations

import json
from collections.abc import Set

from tests.plugins.full_run import FAILING, FullRun
from tests.plugins.topics import SECRETS, STREAM_KEY, all_topics

# RTK sends these itself, so the raw log holds them; nothing else may.
RAW_ONLY = {"stream key", "ingest server"}
WINDOW = 10  # a secret cut short still leaks: look for every piece this long


def pieces(secret: str) -> set[bytes]:
    data = secret.encode()
    return {data[i : i + WINDOW] for i in range(len(data) - WINDOW + 1)}


def leaks(blob: bytes, allowed: Set[str] = frozenset()) -> list[str]:
    """The secrets (by label) of which some piece is in `blob`."""
    return [
        label
        for label, secret in SECRETS.items()
        if label not in allowed and any(piece in blob for piece in pieces(secret))
    ]


async def test_no_secret_leaves_the_webhooks_log(full_run: FullRun) -> None:
    loop, driver = full_run.loop, full_run.driver
    for name, topic in all_topics(loop):
        messages = await driver.read(name)
        assert messages, f"{topic} is empty: the run should put something on every topic"
        allowed = RAW_ONLY if name == "webhooks" else frozenset()
        for message in messages:
            blob = b"\n".join(
                [message.key or b"", message.value or b""]
                + [name.encode() + b"=" + value for name, value in message.headers]
            )
            assert not leaks(blob, allowed), (topic, message.offset, leaks(blob, allowed))
    raw = b"".join(m.value or b"" for m in await driver.read("webhooks"))
    assert STREAM_KEY.encode() in raw, "the raw log keeps what RTK sent"

    # RTK refused a start with an error echoing what it was sent: the decision says why,
    # without the token or the storage credentials.
    (decision,) = await driver.values("decisions", key=FAILING)
    assert decision["outcome"] == "failed"
    assert decision["error"].startswith("RTK start_recording failed: HTTP 400")
    assert "storage_config rejected" in decision["error"]
    assert not leaks(decision["error"].encode()), decision["error"]
    (dead,) = [m for m in await driver.read("dead_letter") if m.key == FAILING.encode()]
    headers = dict(dead.headers)
    assert headers["router-stage"] == b"effects"
    assert headers["router-error"].decode() == decision["error"]
    assert json.loads(dead.value or b"{}")["event"] == "meeting.participantJoined"

    text = await driver.metrics_text()
    assert 'router_decisions_total{outcome="failed"} 1.0' in text
    assert not leaks(text.encode()), leaks(text.encode())
