"""Dead-letter and unknown events (SPEC 6): an authentic known event the router cannot handle
lands on dead-letter byte for byte, with the log's headers plus why and where; the worker goes
on with the meeting's next event; an unknown event type stays on the webhooks log only; and no
webhook of a run is dropped without a trace."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from router.core.delivery import RTK_EVENTS
from router.kafka import Consumed
from tests.plugins.e2e import Loop
from tests.plugins.full_run import FullRun
from tests.plugins.topics import (
    INGEST_SERVER,
    JSON_TOPICS,
    STREAM_KEY,
    has_type,
    headers_of,
    metric,
    rtk_event,
    start_driver,
)

SESSION = "7d9e0f7a-58a5-4f0e-9a43-6a2f7e0c1b55"


def without(path: str) -> Callable[[dict[str, Any]], None]:
    """Remove a dotted field of the payload."""

    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = payload
        for part in parents:
            target = target[part]
        del target[last]

    return change


def peer_id_as_number(payload: dict[str, Any]) -> None:
    payload["participant"]["peerId"] = 42


def recording_ids_as_numbers(payload: dict[str, Any]) -> None:
    payload["recording"].update(id=97, recordingId=97)


@pytest.mark.parametrize(
    ("event", "spoil", "field"),
    [
        pytest.param(
            "recording.statusUpdate",
            lambda p: (without("recording.id")(p), without("recording.recordingId")(p)),
            "recording.id",
            id="recording-without-id",
        ),
        pytest.param(
            "recording.statusUpdate",
            recording_ids_as_numbers,
            "recording.id",
            id="recording-id-not-a-string",
        ),
        pytest.param(
            "recording.statusUpdate", without("recording"), "recording", id="no-recording"
        ),
        pytest.param(
            "meeting.participantJoined",
            without("participant.peerId"),
            "participant.peerId",
            id="join-without-peer",
        ),
        pytest.param(
            "meeting.participantLeft",
            peer_id_as_number,
            "participant.peerId",
            id="leave-with-numeric-peer",
        ),
    ],
)
async def test_an_event_that_cannot_be_handled_is_dead_lettered_and_the_meeting_goes_on(
    make_loop: Callable[..., Awaitable[Loop]],
    event: str,
    spoil: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    driver = await start_driver(
        make_loop,
        policy={"rules": [{"name": "never", "when": {"meeting.title": "-"}, "action": "skip"}]},
    )
    meeting_id = f"m-{uuid.uuid4()}"
    payload = rtk_event(event, meeting_id, SESSION, title="Café ☕ review")
    spoil(payload)
    # Bytes no serialiser of ours would produce: the dead-letter copy must be these.
    body = json.dumps(payload, indent=3, ensure_ascii=False).encode() + b"\n"
    bad_id = str(uuid.uuid4())
    await driver.deliver(body, delivery_id=bad_id)
    good_id = str(uuid.uuid4())
    await driver.deliver(
        rtk_event("meeting.participantJoined", meeting_id, SESSION), delivery_id=good_id
    )

    # The worker moved on: the meeting's next event was handled.
    await driver.messages("meetings", key=meeting_id, until=has_type("participant.joined"))
    (dead,) = await driver.messages("dead_letter", expect=1)
    (logged,) = [
        r
        for r in await driver.messages("webhooks", key=meeting_id)
        if headers_of(r).get("rtk-uuid") == bad_id
    ]
    assert dead.value == body
    assert dead.key == meeting_id.encode()
    copied = without_signature(logged.headers)
    assert list(dead.headers[: len(copied)]) == copied
    extra = dict(dead.headers[len(copied) :])
    assert set(extra) == {"router-error", "router-stage"}
    assert extra["router-stage"] == b"parse"
    error = extra["router-error"].decode()
    assert event in error
    assert field in error, error
    assert "42" not in error  # fields are named, values never shown

    # Nothing else came of it; the good event produced its records and a decision.
    await driver.settled()
    for topic in JSON_TOPICS:
        for message in await driver.messages(topic):
            assert not headers_of(message)["ce_id"].startswith(bad_id)
    (decision,) = await driver.values("decisions", key=meeting_id)
    assert decision["delivery_id"] == good_id
    samples = await driver.metrics()
    assert samples[metric("router_dead_letters_total", stage="parse")] == 1
    assert samples[metric("router_events_total", event="meeting.participantJoined", result="ok")]


async def test_an_unknown_event_type_stays_on_the_webhooks_log(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop)
    meeting_id = f"m-{uuid.uuid4()}"
    unknown = {"event": "meeting.handRaised", "meeting": {"id": meeting_id}, "peerId": "p-1"}
    unknown_id = str(uuid.uuid4())
    assert (await driver.deliver(unknown, delivery_id=unknown_id))["status"] == "accepted"
    await driver.deliver(rtk_event("meeting.started", meeting_id, SESSION))
    await driver.messages("meetings", key=meeting_id, until=has_type("meeting.started"))
    await driver.settled()

    (logged,) = [
        r
        for r in await driver.messages("webhooks", key=meeting_id)
        if headers_of(r).get("rtk-uuid") == unknown_id
    ]
    assert headers_of(logged)["router-event"] == "meeting.handRaised"
    assert json.loads(logged.value or b"{}") == unknown
    for topic in ("recordings", "meetings", "decisions", "dead_letter"):
        for message in await driver.messages(topic):
            assert unknown_id not in json.dumps(
                [headers_of(message), (message.value or b"").decode()]
            ), topic
    samples = await driver.metrics()
    assert samples[metric("router_events_total", event="other", result="unknown")] == 1
    assert (
        samples[metric("router_webhooks_total", source="realtimekit", event="other", status="200")]
        == 1
    )
    assert not any(name == "router_dead_letters_total" for name, _ in samples)


async def test_a_dead_lettered_body_keeps_everything_but_its_secrets(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop)
    # Dyte's livestream event: no meeting to key it by, so it cannot be handled.
    payload = {
        "event": "livestreaming.statusUpdate",
        "streamId": "d231d346-c422-43a6-a324-c0d65b79c8a7",
        "status": "LIVE",
        "ingestServer": INGEST_SERVER,
        "streamKey": STREAM_KEY,
    }
    body = json.dumps(payload, indent=2).encode()
    delivery_id = str(uuid.uuid4())
    await driver.deliver(body, delivery_id=delivery_id)

    (dead,) = await driver.messages("dead_letter", expect=1)
    (logged,) = await driver.messages("webhooks", expect=1)
    assert logged.value == body  # the raw log keeps it all
    masked = body
    for secret in (STREAM_KEY, INGEST_SERVER):
        masked = masked.replace(json.dumps(secret).encode(), b'"***"')
    assert dead.value == masked
    assert dead.key is None
    copied = without_signature(logged.headers)
    assert list(dead.headers[: len(copied)]) == copied
    extra = dict(dead.headers[len(copied) :])
    assert extra["router-stage"] == b"parse"
    assert extra["router-redacted"] == b"ingestServer,streamKey"
    assert b"meeting" in extra["router-error"]


def caused_by(message: Consumed) -> str:
    """The delivery a message of the JSON topics or dead-letter came from."""
    headers = headers_of(message)
    if "ce_id" in headers:
        return headers["ce_id"].rpartition("/")[0]
    return headers["router-delivery-id"]


async def test_every_webhook_of_a_run_is_accounted_for(full_run: FullRun) -> None:
    """Each logged webhook of a known type led to a record or to dead-letter; unknown types to
    nothing. (No status of this run is a repeat, which would be dropped and counted.)"""
    driver = full_run.driver
    causes: dict[str, set[str]] = {}
    for topic in (*JSON_TOPICS, "dead_letter"):
        for message in await driver.messages(topic):
            causes.setdefault(caused_by(message), set()).add(topic)
    webhooks = await driver.messages("webhooks")
    assert len(webhooks) >= 15
    for webhook in webhooks:
        headers = headers_of(webhook)
        delivery_id, event = headers["router-delivery-id"], headers["router-event"]
        if event in RTK_EVENTS:
            assert delivery_id in causes, (event, webhook.value)
        else:
            assert delivery_id == full_run.unknown_id
            assert delivery_id not in causes
    dead = {caused_by(m) for m in await driver.messages("dead_letter")}
    assert dead == set(full_run.dead_letter_ids)


def without_signature(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The webhook's headers as a dead-letter copy carries them: all but `rtk-signature`,
    which would make the copy a delivery RTK's key accepts again."""
    kept = [(k, v) for k, v in headers if k != "rtk-signature"]
    assert len(kept) == len(headers) - 1  # (the log has the signature)
    return kept
