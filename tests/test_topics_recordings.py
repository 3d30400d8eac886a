"""The recordings topic end to end (SPEC 6.1): one message per real change of a recording's
status, in order, with `previous_status` chained; duplicates, late and reversed statuses are
dropped and counted in `router_recording_updates_dropped_total`; RTK's payload quirks are
normalised on the way."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from router.kafka import Consumed
from router.samples import encode_payload, sample_payload
from tests.plugins.e2e import Loop
from tests.plugins.topics import (
    RECORD_WHILE_PRESENT,
    Driver,
    has_type,
    metric,
    rtk_event,
    start_driver,
    until_live,
)

RECORDING_FIELDS = {
    "type",
    "version",
    "app",
    "recording_id",
    "meeting_id",
    "session_id",
    "status",
    "previous_status",
    "source",
    "occurred_at",
    "received_at",
    "started_at",
    "stopped_at",
    "output_file_name",
    "download_url",
    "audio_download_url",
    "download_url_expiry",
    "file_size",
    "duration_seconds",
    "delivery_id",
}
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DROPPED = "router_recording_updates_dropped_total"
RC = "recording.status_changed"
BASE = dt.datetime(2026, 6, 3, 10, 0, tzinfo=dt.UTC)


def raw_body(webhooks: list[Consumed], delivery_id: str) -> bytes:
    """The body the router logged for one delivery."""
    for record in webhooks:
        if ("rtk-uuid", delivery_id.encode()) in record.headers:
            return record.value or b""
    raise AssertionError(f"delivery {delivery_id} is not on the webhooks topic")


async def test_a_recording_the_router_starts_goes_invoked_to_uploaded_once_per_status(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop, policy=RECORD_WHILE_PRESENT)
    loop = driver.loop
    meeting_id = "m-lifecycle"
    script = {"meeting_id": meeting_id, "title": "Lifecycle"}
    await loop.play({**script, "steps": [{"action": "join", "participant": "alice"}]})
    session_id = (await until_live(loop, meeting_id))["session_id"]
    await driver.messages("recordings", key=meeting_id, until=has_type(RC, status="RECORDING"))
    await loop.play({**script, "steps": [{"action": "leave", "participant": "alice"}]})
    records = await driver.values(
        "recordings", key=meeting_id, until=has_type(RC, status="UPLOADED")
    )

    assert [(r["status"], r["previous_status"], r["source"]) for r in records] == [
        ("INVOKED", None, "api"),
        ("RECORDING", "INVOKED", "webhook"),
        ("UPLOADING", "RECORDING", "webhook"),
        ("UPLOADED", "UPLOADING", "webhook"),
    ]
    (emulated,) = await loop.control("GET", f"/recordings?meeting_id={meeting_id}")
    for record in records:
        assert set(record) == RECORDING_FIELDS
        assert record["type"] == RC
        assert record["version"] == 1
        assert record["recording_id"] == emulated["id"]
        assert record["meeting_id"] == meeting_id
        assert record["session_id"] == session_id
        assert RFC3339_MS.match(record["received_at"]), record
    invoked, recording, uploading, uploaded = records

    # INVOKED comes from the start call: caused by the join the policy decided on.
    (decision,) = [
        d for d in await driver.values("decisions", key=meeting_id) if d["outcome"] == "started"
    ]
    assert decision["recording_id"] == emulated["id"]
    assert invoked["delivery_id"] == decision["delivery_id"]
    assert invoked["occurred_at"] is None
    assert invoked["download_url"] is invoked["file_size"] is None

    # The others come from RTK's webhooks, one each, in order.
    deliveries = [
        d["delivery_id"]
        for d in await loop.control("GET", "/webhooks")
        if d["event"] == "recording.statusUpdate" and d["key"] == emulated["id"]
    ]
    assert [r["delivery_id"] for r in (recording, uploading, uploaded)] == deliveries
    assert recording["started_at"] == emulated["started_time"]
    assert recording["occurred_at"] == recording["started_at"]
    assert recording["stopped_at"] is None
    assert uploading["stopped_at"] == emulated["stopped_time"]
    assert uploading["occurred_at"] == uploading["stopped_at"]
    assert isinstance(uploading["file_size"], int)
    assert uploading["download_url"] is None
    assert uploaded["download_url"] == emulated["download_url"]
    assert uploaded["download_url"].startswith("https://")
    assert uploaded["download_url_expiry"] == emulated["download_url_expiry"]
    assert RFC3339_MS.match(uploaded["download_url_expiry"])
    assert uploaded["file_size"] == emulated["file_size"]
    assert isinstance(uploaded["file_size"], int)  # the emulator sends it as a string
    assert uploaded["duration_seconds"] == emulated["recording_duration"]
    assert uploaded["output_file_name"] == emulated["output_file_name"]
    assert uploaded["output_file_name"].startswith(meeting_id)

    # RTK delivers the same statuses again, late and in other forms: none is published again.
    webhooks = await driver.messages("webhooks", key=meeting_id)
    body = {
        status: raw_body(webhooks, r["delivery_id"])
        for status, r in (("RECORDING", recording), ("UPLOADING", uploading))
    }
    uploaded_body = raw_body(webhooks, uploaded["delivery_id"])
    webhook_id = loop.emulator.config.webhook_id
    again = await driver.deliver(uploaded_body, webhook_id=webhook_id)
    assert again == {"status": "duplicate"}  # same bytes, same webhook: the receiver knows it
    await driver.deliver(uploaded_body, webhook_id="wh-second-subscription")
    reformatted = json.dumps(json.loads(uploaded_body), indent=2).encode()
    await driver.deliver(reformatted)
    await driver.deliver(json.dumps(json.loads(body["RECORDING"]), indent=1).encode())
    late = json.loads(body["UPLOADING"])
    late["recording"]["stoppedTime"] = late["recording"]["stoppedTime"].replace("T", " ")
    await driver.deliver(late)
    await loop.control("POST", f"/recordings/{emulated['id']}/status", {"status": "ERRORED"})

    assert await driver.wait_metric(metric(DROPPED, reason="duplicate"), 2) == 2
    assert await driver.wait_metric(metric(DROPPED, reason="terminal"), 3) == 3
    await sentinel(driver, meeting_id, session_id)
    assert await driver.values("recordings", key=meeting_id) == records
    samples = await driver.metrics()
    assert samples.get(metric(DROPPED, reason="regression"), 0) == 0


async def sentinel(driver: Driver, meeting_id: str, session_id: str) -> None:
    """Deliver a last event for the meeting and wait for its record: the worker handles a
    meeting's events in order, so everything delivered before it has been handled."""
    marker = f"https://storage.example.com/{uuid.uuid4()}/chat.json"
    chat = rtk_event("meeting.chatSynced", meeting_id, session_id, chatDownloadUrl=marker)
    await driver.deliver(chat)
    found = await driver.messages(
        "meetings", key=meeting_id, until=has_type("meeting.chat_ready", download_url=marker)
    )
    assert has_type("meeting.chat_ready", download_url=marker)(found), "the sentinel never came"


@pytest.mark.parametrize(
    ("delivered", "published", "dropped"),
    [
        pytest.param(
            ["RECORDING", "RECORDING"], ["RECORDING"], {"duplicate": 1}, id="same-status-twice"
        ),
        pytest.param(
            ["RECORDING", "UPLOADING", "RECORDING"],
            ["RECORDING", "UPLOADING"],
            {"regression": 1},
            id="reversed",
        ),
        pytest.param(
            ["INVOKED", "UPLOADING", "RECORDING", "INVOKED"],
            ["INVOKED", "UPLOADING"],
            {"regression": 2},
            id="late-while-uploading",
        ),
        pytest.param(
            ["RECORDING", "UPLOADED", "UPLOADING"],
            ["RECORDING", "UPLOADED"],
            {"terminal": 1},
            id="upload-before-uploading",
        ),
        pytest.param(
            ["INVOKED", "ERRORED", "RECORDING", "UPLOADED", "ERRORED"],
            ["INVOKED", "ERRORED"],
            {"terminal": 2, "duplicate": 1},
            id="after-errored",
        ),
        pytest.param(
            ["RECORDING", "PAUSED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED"],
            ["RECORDING", "PAUSED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED"],
            {},
            id="paused-both-ways",
        ),
        pytest.param(
            ["RECORDING", "EXPLODED", "UPLOADING"],
            ["RECORDING", "UPLOADING"],
            {"unknown_status": 1},
            id="unknown-status",
        ),
    ],
)
async def test_only_real_changes_are_published(
    make_loop: Callable[..., Awaitable[Loop]],
    delivered: list[str],
    published: list[str],
    dropped: dict[str, int],
) -> None:
    driver = await start_driver(make_loop)
    meeting_id, session_id, recording_id = "m-order", str(uuid.uuid4()), str(uuid.uuid4())
    for index, status in enumerate(delivered):
        payload = sample_payload(
            "recording.statusUpdate",
            # A later time for each delivery: the same status twice is not the same body.
            now=BASE + dt.timedelta(seconds=index),
            meeting_id=meeting_id,
            session_id=session_id,
            recording={"id": recording_id, "status": status},
        )
        await driver.deliver(payload)
    await sentinel(driver, meeting_id, session_id)

    records = await driver.values("recordings", key=meeting_id)
    assert [r["status"] for r in records] == published
    assert [r["previous_status"] for r in records] == [None, *published[:-1]]
    assert {r["recording_id"] for r in records} == {recording_id}
    samples = await driver.metrics()
    counted = {
        reason: samples.get(metric(DROPPED, reason=reason), 0)
        for reason in ("duplicate", "regression", "terminal", "unknown_status")
    }
    assert counted == {"duplicate": 0, "regression": 0, "terminal": 0, "unknown_status": 0} | {
        reason: float(n) for reason, n in dropped.items()
    }


ORG = "c94c437b-592a-4a39-b9e2-47ef1451e43b"
STARTED = "2023-01-25 04:21:35.903816Z"
STOPPED = "2023-01-25 04:51:35.903816Z"
EXPIRY = "2023-02-01 04:51:36.120934Z"


def quirky(meeting_id: str, *, meeting: bool = True, **recording: Any) -> dict[str, Any]:
    """An UPLOADED `recording.statusUpdate` in the Dyte shape (space timestamps with
    microseconds), with recording fields replaced or (given None) removed, and without the
    `meeting` object if told."""
    fields: dict[str, Any] = {
        "id": "rec-" + meeting_id,
        "recordingId": "rec-" + meeting_id,
        "status": "UPLOADED",
        "meetingId": meeting_id,
        "roomUUID": "session-" + meeting_id,
        "outputFileName": "board.mp4",
        "downloadUrl": "https://storage.example.com/board.mp4",
        "downloadUrlExpiry": EXPIRY,
        "startedTime": STARTED,
        "stoppedTime": STOPPED,
        "fileSize": "2044680",
        "recordingDuration": 1800,
        "organizationId": ORG,
    }
    fields.update(recording)
    payload: dict[str, Any] = {
        "event": "recording.statusUpdate",
        "recording": {k: v for k, v in fields.items() if v is not None},
    }
    if meeting:
        payload["meeting"] = {"id": meeting_id, "title": "Board", "organizedBy": {"id": ORG}}
    return payload


NORMALISED = {
    "status": "UPLOADED",
    "previous_status": None,
    "source": "webhook",
    "started_at": "2023-01-25T04:21:35.903Z",
    "stopped_at": "2023-01-25T04:51:35.903Z",
    "occurred_at": "2023-01-25T04:51:35.903Z",
    "download_url": "https://storage.example.com/board.mp4",
    "download_url_expiry": "2023-02-01T04:51:36.120Z",
    "output_file_name": "board.mp4",
    "file_size": 2044680,
    "duration_seconds": 1800,
}

# (id, recording fields changed, fields expected beyond NORMALISED); ids are meeting ids.
QUIRKS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("q-size-as-string", {}, {}),
    ("q-size-as-number", {"fileSize": 216787}, {"file_size": 216787}),
    ("q-no-meeting-id", {"meetingId": None}, {}),
    ("q-no-meeting-object", {"meeting": False}, {}),
    ("q-recording-id-only", {"id": None}, {}),
    ("q-no-session", {"roomUUID": None}, {"session_id": None}),
    (
        "q-iso-three-digits",
        {"startedTime": "2023-01-25T04:21:35.9Z", "stoppedTime": "2023-01-25T04:51:35Z"},
        {
            "started_at": "2023-01-25T04:21:35.900Z",
            "stopped_at": "2023-01-25T04:51:35.000Z",
            "occurred_at": "2023-01-25T04:51:35.000Z",
        },
    ),
]


async def test_rtk_quirks_are_normalised(make_loop: Callable[..., Awaitable[Loop]]) -> None:
    driver = await start_driver(make_loop)
    ids = {}
    for meeting_id, changes, _ in QUIRKS:
        ids[meeting_id] = str(uuid.uuid4())
        await driver.deliver(
            encode_payload(quirky(meeting_id, **changes)), delivery_id=ids[meeting_id]
        )
    for meeting_id, _, expected in QUIRKS:
        (record,) = await driver.values("recordings", key=meeting_id, expect=1)
        assert set(record) == RECORDING_FIELDS, meeting_id
        want = {
            **NORMALISED,
            "recording_id": "rec-" + meeting_id,
            "meeting_id": meeting_id,
            "session_id": "session-" + meeting_id,
            "delivery_id": ids[meeting_id],
            **expected,
        }
        assert {k: record[k] for k in want} == want, meeting_id
