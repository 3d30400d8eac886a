"""The meetings topic end to end (SPEC 6.2): the lifecycle of a session with the peers present
after each event (a set by peer id), and the other RTK events in the same envelope, a
livestream never carrying its stream key or ingest server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from router.kafka import Consumed
from tests.plugins.e2e import Loop
from tests.plugins.topics import (
    INGEST_SERVER,
    STREAM_KEY,
    has_type,
    livestream_event,
    rtk_event,
    start_driver,
    until_live,
)

ENVELOPE = {
    "type",
    "version",
    "app",
    "meeting_id",
    "session_id",
    "title",
    "organization_id",
    "occurred_at",
    "received_at",
    "participant",
    "participants_present",
    "reason",
}


def body_of_join(webhooks: list[Consumed], peer_id: str) -> bytes:
    """The logged body of a peer's join."""
    for record in webhooks:
        payload = json.loads(record.value or b"{}")
        if (
            payload.get("event") == "meeting.participantJoined"
            and payload["participant"]["peerId"] == peer_id
        ):
            return record.value or b""
    raise AssertionError(f"no join of {peer_id} on the webhooks topic")


def summary(records: list[dict[str, Any]]) -> list[tuple[str, str | None, int]]:
    """(type, peer, peers present) of each record."""
    return [
        (
            r["type"],
            r["participant"]["peer_id"] if r["participant"] else None,
            r["participants_present"],
        )
        for r in records
    ]


async def test_a_session_is_published_with_the_peers_present(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop)
    loop = driver.loop
    meeting_id = "m-standup"
    script = {"meeting_id": meeting_id, "title": "Standup"}
    joins = [
        {"action": "join", "participant": "alice", "name": "Alice", "peer_id": "alice-laptop"},
        {"at": 0.1, "action": "join", "participant": "bob", "name": "Bob", "peer_id": "bob-1"},
        # The same person on a second device is a second peer.
        {
            "at": 0.2,
            "action": "join",
            "participant": "alice",
            "name": "Alice",
            "peer_id": "alice-phone",
        },
    ]
    await loop.play({**script, "steps": joins})
    session_id = (await until_live(loop, meeting_id))["session_id"]
    await driver.messages("meetings", key=meeting_id, until=has_type("participant.joined", 3))

    # RTK delivers alice's join again: as the same bytes (once to this webhook, once to a second
    # subscription of the same endpoint) and re-serialised. The peer is counted once.
    original = body_of_join(await driver.messages("webhooks", key=meeting_id), "alice-laptop")
    webhook_id = loop.emulator.config.webhook_id
    assert await driver.deliver(original, webhook_id=webhook_id) == {"status": "duplicate"}
    assert (await driver.deliver(original, webhook_id="wh-other"))["status"] == "accepted"
    reserialised = json.dumps(json.loads(original), indent=2).encode()
    assert (await driver.deliver(reserialised))["status"] == "accepted"
    await driver.messages("meetings", key=meeting_id, until=has_type("participant.joined", 4))

    leaves = [
        {"action": "leave", "peer_id": "bob-1"},
        {"at": 0.1, "action": "leave", "peer_id": "alice-phone"},
        {"at": 0.2, "action": "leave", "peer_id": "alice-laptop"},
    ]
    await loop.play({**script, "steps": leaves})
    await driver.messages("meetings", key=meeting_id, until=has_type("meeting.ended"))
    # A new session of the same meeting starts from nobody.
    await loop.play({**script, "steps": [{"action": "join", "participant": "carol"}]})
    records = await driver.values(
        "meetings", key=meeting_id, until=has_type("participant.joined", 5)
    )

    carol = records[-1]["participant"]["peer_id"]
    assert summary(records) == [
        ("meeting.started", None, 0),
        ("participant.joined", "alice-laptop", 1),
        ("participant.joined", "bob-1", 2),
        ("participant.joined", "alice-phone", 3),
        ("participant.joined", "alice-laptop", 3),
        ("participant.left", "bob-1", 2),
        ("participant.left", "alice-phone", 1),
        ("participant.left", "alice-laptop", 0),
        ("meeting.ended", None, 0),
        ("meeting.started", None, 0),
        ("participant.joined", carol, 1),
    ]
    organization = loop.emulator.config.organization_id
    for record in records:
        assert set(record) == ENVELOPE, record
        assert record["version"] == 1
        assert record["meeting_id"] == meeting_id
        assert record["title"] == "Standup"
        assert record["organization_id"] == organization
    first, second = records[:9], records[9:]
    assert {r["session_id"] for r in first} == {session_id}
    (new_session,) = {r["session_id"] for r in second}
    assert new_session not in (None, session_id)

    started, alice, _, phone = first[:4]
    assert started["occurred_at"] is not None
    assert started["participant"] is started["reason"] is None
    assert alice["participant"] == {
        "peer_id": "alice-laptop",
        "custom_participant_id": "alice",
        "display_name": "Alice",
    }
    assert phone["participant"]["custom_participant_id"] == "alice"
    joined_at = json.loads(original)["participant"]["joinedAt"]
    assert alice["occurred_at"] == joined_at
    left = first[7]
    assert left["occurred_at"] is not None
    assert left["occurred_at"] >= alice["occurred_at"]
    ended = first[8]
    assert ended["reason"] == "ALL_PARTICIPANTS_LEFT"
    assert ended["participant"] is None
    assert ended["occurred_at"] is not None


# (RTK event, extra fields of its payload, record type, fields expected beyond the envelope)
ARTIFACTS = [
    pytest.param(
        "meeting.chatSynced",
        {
            "chatDownloadUrl": "https://storage.example.com/chat.json",
            "chatDownloadUrlExpiry": "2026-06-10 10:30:00.123456Z",
        },
        "meeting.chat_ready",
        {
            "download_url": "https://storage.example.com/chat.json",
            "download_url_expiry": "2026-06-10T10:30:00.123Z",
        },
        id="chat",
    ),
    pytest.param(
        "meeting.transcript",
        {
            "transcriptDownloadUrl": "https://storage.example.com/transcript.csv",
            "transcriptDownloadUrlExpiry": "2026-06-10T10:30:00Z",
        },
        "meeting.transcript_ready",
        {
            "download_url": "https://storage.example.com/transcript.csv",
            "download_url_expiry": "2026-06-10T10:30:00.000Z",
        },
        id="transcript",
    ),
    pytest.param(
        "meeting.summary",
        {
            "summaryDownloadUrl": "https://storage.example.com/summary.txt",
            "summaryDownloadUrlExpiry": "2026-06-10T10:30:00.000Z",
        },
        "meeting.summary_ready",
        {
            "download_url": "https://storage.example.com/summary.txt",
            "download_url_expiry": "2026-06-10T10:30:00.000Z",
        },
        id="summary",
    ),
]


@pytest.mark.parametrize(("event", "fields", "record_type", "expected"), ARTIFACTS)
async def test_artifacts_of_a_session_land_on_meetings(
    make_loop: Callable[..., Awaitable[Loop]],
    event: str,
    fields: dict[str, Any],
    record_type: str,
    expected: dict[str, Any],
) -> None:
    driver = await start_driver(make_loop)
    meeting_id, session_id = f"m-{uuid.uuid4()}", str(uuid.uuid4())
    # The meeting is known from its start; the artifact arrives after the session ended.
    meeting = {"title": "Quarterly review", "organization_id": "org-1"}
    await driver.deliver(rtk_event("meeting.started", meeting_id, session_id, **meeting))
    payload = rtk_event(event, meeting_id, session_id, **meeting)
    payload.update(fields)
    delivery_id = str(uuid.uuid4())
    await driver.deliver(payload, delivery_id=delivery_id)

    records = await driver.values("meetings", key=meeting_id, until=has_type(record_type))
    assert [r["type"] for r in records] == ["meeting.started", record_type]
    record = records[1]
    assert set(record) == ENVELOPE | {"download_url", "download_url_expiry"}
    want = {
        "version": 1,
        "meeting_id": meeting_id,
        "session_id": session_id,
        # `meeting.summary` sends no title: the router remembers it from the start.
        "title": "Quarterly review",
        "organization_id": "org-1",
        "participant": None,
        "participants_present": 0,
        "reason": None,
        **expected,
    }
    assert {k: record[k] for k in want} == want


async def test_a_livestream_status_never_carries_its_stream_key(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop)
    meeting_id = f"m-{uuid.uuid4()}"
    statuses = ("LIVE", "OFFLINE", "IDLE")
    payloads = [livestream_event(meeting_id, status=s, title="Town hall") for s in statuses]
    for payload in payloads:
        await driver.deliver(payload)

    found = await driver.messages(
        "meetings", key=meeting_id, until=has_type("livestream.status_changed", 3)
    )
    records = [json.loads(r.value or b"{}") for r in found]
    assert [r["type"] for r in records] == ["livestream.status_changed"] * 3
    for record, payload, message in zip(records, payloads, found, strict=True):
        assert set(record) == ENVELOPE | {"stream_id", "status", "playback_url"}
        assert record["stream_id"] == payload["streamId"]
        assert record["status"] == payload["status"]
        assert record["playback_url"] == payload["playbackUrl"]
        assert record["title"] == "Town hall"
        assert record["participant"] is None
        everything = (message.value or b"") + b"".join(v for _, v in message.headers)
        for secret in (STREAM_KEY, INGEST_SERVER, "streamKey", "ingestServer", "stream_key"):
            assert secret.encode() not in everything
    # The raw log keeps what RTK sent, secrets included: it is the internal topic.
    assert STREAM_KEY.encode() in b"".join(
        r.value or b"" for r in await driver.messages("webhooks", key=meeting_id)
    )
