"""Small helpers shared by tests: signing deliveries and reading topics back."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from router.clock import monotonic, wall_seconds
from router.config import KafkaConfig
from router.core.signature import HMAC_HEADER, hmac_sign, rsa_sign
from router.kafka import Consumed, TopicReader


def rtk_headers(
    key: rsa.RSAPrivateKey,
    body: bytes,
    *,
    delivery_id: str | None = None,
    webhook_id: str = "wh-test",
) -> dict[str, str]:
    """Headers RTK would send with `body`."""
    return {
        "content-type": "application/json",
        "rtk-signature": rsa_sign(key, body),
        "rtk-uuid": delivery_id or str(uuid.uuid4()),
        "rtk-webhook-id": webhook_id,
    }


def hmac_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers an internal sender signs with the `hmac` scheme."""
    stamp = int(wall_seconds()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        HMAC_HEADER: hmac_sign(secret, body, timestamp=stamp),
    }


def joined_body(meeting_id: str = "m-1", peer_id: str = "p-1", **extra: Any) -> bytes:
    """A compact `meeting.participantJoined` body."""
    payload = {
        "event": "meeting.participantJoined",
        "meeting": {"id": meeting_id, "sessionId": "s-1", "title": "Weekly sync"},
        "participant": {
            "peerId": peer_id,
            "customParticipantId": "user-1",
            "userDisplayName": "Mary",
            "joinedAt": "2026-06-03T10:05:00.000Z",
        },
        **extra,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def read_topic(
    config: KafkaConfig, bootstrap: str, topic: str, *, expect: int, timeout: float = 10.0
) -> list[Consumed]:
    """Every message of `topic`, waiting until at least `expect` have arrived (or timeout)."""
    records: list[Consumed] = []
    async with TopicReader(config, bootstrap, topic, from_beginning=True) as reader:
        async with asyncio.timeout(timeout):
            while len(records) < expect:
                records.extend(await reader.fetch(timeout=0.2))
        records.extend(await reader.fetch(timeout=0.3))  # anything beyond what was expected
    return records


async def wait_ready(
    client: TestClient, *, want: bool = True, within: float = 20.0
) -> dict[str, Any]:
    """Poll `/readyz` until it says `want`; its body then (fails the test after `within` s)."""
    deadline = monotonic() + within
    while True:
        response = await client.get("/readyz")
        body: dict[str, Any] = await response.json()
        if body["ready"] is want:
            assert response.status == (200 if want else 503)
            return body
        assert monotonic() < deadline, body
        await asyncio.sleep(0.2)
