"""`full_run`: one run of the whole loop that puts every kind of message on every topic
(every record type, dead-letters of three kinds, an unknown event, a source signed with HMAC),
with known secrets in play (API token, storage credentials in a rule, a stream key, an HMAC
secret) so that tests can check the contract of every message and look for the secrets where
they must not be."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.plugins.e2e import Loop
from tests.plugins.topics import (
    API_TOKEN,
    HMAC_SECRET,
    INGEST_SERVER,
    INTERNAL_PATH,
    STORAGE_ACCESS_KEY,
    STORAGE_SECRET,
    STREAM_KEY,
    Driver,
    has_type,
    livestream_event,
    rtk_event,
    start_driver,
    until_live,
)

RECORDED = "m-recorded"  # recorded by policy: INVOKED -> RECORDING -> UPLOADING -> UPLOADED
FAILING = "m-failing"  # the start fails at RTK: a failed decision and a dead-letter
INTERNAL = "m-internal"  # an event through the HMAC source
INVALID = "m-invalid"  # known events the router cannot handle: dead-letter at parse
UNKNOWN = "m-unknown"  # an event type the router does not know: webhooks log only

SECRET_POLICY = {
    "rules": [
        {
            "name": "record-titled",
            "on": "meeting.participantJoined",
            "when": {"meeting.title": {"regex": "^Recorded"}},
            "action": "start_recording",
            "recording": {
                "file_name_prefix": "{meeting.id}",
                "storage_config": {
                    "type": "aws",
                    "access_key": STORAGE_ACCESS_KEY,
                    "secret": STORAGE_SECRET,
                    "bucket": "recordings",
                    "region": "eu-central-1",
                },
            },
        },
        {
            "name": "stop-when-empty",
            "on": "meeting.participantLeft",
            "when": {"session.participants": 0},
            "action": "stop_recording",
        },
    ]
}


def secret_loop_sections() -> dict[str, Any]:
    """`make_loop` arguments for a loop whose every secret is one of `SECRETS`."""
    internal = {
        "name": "internal",
        "path": INTERNAL_PATH,
        "signature": {"scheme": "hmac", "secrets": [HMAC_SECRET], "max_age_seconds": 300},
    }
    return {
        "emulator_options": {"api_token": API_TOKEN},
        "sources": [internal],
        "policy": SECRET_POLICY,
    }


@dataclass(frozen=True)
class FullRun:
    """A finished run: its driver, and what it produced."""

    driver: Driver
    dead_letter_ids: tuple[str, ...]  # rtk-uuids of the deliveries that must be dead-lettered
    unknown_id: str  # rtk-uuid of the unknown event

    @property
    def loop(self) -> Loop:
        return self.driver.loop


async def produce_everything(driver: Driver) -> FullRun:
    """Play the run and wait until every message it causes is on its topic."""
    loop = driver.loop
    await loop.play(
        {
            "meeting_id": RECORDED,
            "title": "Recorded board",
            "steps": [{"action": "join", "participant": "alice", "peer_id": "alice-laptop"}],
        }
    )
    session_id = (await until_live(loop, RECORDED))["session_id"]
    await driver.messages(
        "recordings", key=RECORDED, until=has_type("recording.status_changed", status="RECORDING")
    )
    # The last one out: the policy stops the recording, RTK uploads it, the session ends.
    await loop.play(
        {
            "meeting_id": RECORDED,
            "title": "Recorded board",
            "steps": [{"action": "leave", "peer_id": "alice-laptop"}],
        }
    )
    # RTK's other events of the session, the livestream with its stream key.
    same = {"title": "Recorded board", "organization_id": loop.emulator.config.organization_id}
    for event in ("meeting.chatSynced", "meeting.transcript", "meeting.summary"):
        await driver.deliver(rtk_event(event, RECORDED, session_id, **same))
    await driver.deliver(livestream_event(RECORDED, **same))

    # A start that RTK refuses, with a message that echoes what it was sent.
    await loop.control(
        "POST",
        "/faults",
        {
            "status": 400,
            "count": 1,
            "calls": ["start_recording"],
            "message": f"storage_config rejected: secret={STORAGE_SECRET} "
            f"access_key={STORAGE_ACCESS_KEY} (Bearer {API_TOKEN})",
        },
    )
    failing = rtk_event(
        "meeting.participantJoined", FAILING, str(uuid.uuid4()), title="Recorded too"
    )
    failing_id = str(uuid.uuid4())
    await driver.deliver(failing, delivery_id=failing_id)

    await driver.deliver_internal(
        rtk_event("meeting.participantJoined", INTERNAL, str(uuid.uuid4())), HMAC_SECRET
    )

    no_recording_id = rtk_event("recording.statusUpdate", INVALID, str(uuid.uuid4()))
    del no_recording_id["recording"]["id"], no_recording_id["recording"]["recordingId"]
    no_peer = rtk_event("meeting.participantLeft", INVALID, str(uuid.uuid4()))
    del no_peer["participant"]["peerId"]
    # Dyte's livestream event had no meeting: nothing to key it by, so dead-letter; with a
    # stream key in it, which must not travel there.
    no_meeting = {
        "event": "livestreaming.statusUpdate",
        "streamId": str(uuid.uuid4()),
        "status": "LIVE",
        "streamKey": STREAM_KEY,
        "ingestServer": INGEST_SERVER,
    }
    invalid_ids = (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
    invalid = (no_recording_id, no_peer, no_meeting)
    for payload, delivery_id in zip(invalid, invalid_ids, strict=True):
        await driver.deliver(payload, delivery_id=delivery_id)

    unknown_id = str(uuid.uuid4())
    await driver.deliver(
        {"event": "meeting.somethingNew", "meeting": {"id": UNKNOWN}}, delivery_id=unknown_id
    )

    await driver.messages(
        "recordings", key=RECORDED, until=has_type("recording.status_changed", status="UPLOADED")
    )
    await driver.messages("meetings", key=RECORDED, until=has_type("livestream.status_changed"))
    await driver.messages("meetings", key=RECORDED, until=has_type("meeting.ended"))
    await driver.messages("meetings", key=INTERNAL, until=has_type("participant.joined"))
    await driver.messages("decisions", key=FAILING, until=has_type("policy.decision"))
    dead_ids = (failing_id, *invalid_ids)
    await driver.messages("dead_letter", expect=len(dead_ids))
    await driver.settled()
    return FullRun(driver=driver, dead_letter_ids=dead_ids, unknown_id=unknown_id)


@pytest.fixture
async def full_run(make_loop: Callable[..., Awaitable[Loop]]) -> FullRun:
    """A loop configured with known secrets, after `produce_everything`."""
    return await produce_everything(await start_driver(make_loop, **secret_loop_sections()))
