"""Helpers for the topic tests: hand-made deliveries signed with the emulator's key (or a
source's HMAC secret), the router's `/metrics` as numbers, reads of a topic (all of it, or one
meeting's messages once a condition holds), and the known secret values a run is given."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from router.clock import monotonic, now
from router.kafka import Consumed
from router.kafka.messages import consumed
from router.samples import encode_payload, sample_payload
from tests.helpers import hmac_headers, rtk_headers
from tests.plugins.e2e import Loop, RunningRouter, wire

RTK_PATH = "/webhooks/realtimekit"
INTERNAL_PATH = "/webhooks/internal"

# Secret values a run is configured with; none may leave the raw webhooks log.
API_TOKEN = "RTK-API-TOKEN-4c1e9b7a2f"
STORAGE_SECRET = "S3-SECRET-8d2f6a0c31e5"
STORAGE_ACCESS_KEY = "AKIA-ACCESS-KEY-7b3e91"
STREAM_KEY = "live_sk_STREAM-KEY-0a9c5e2d"
INGEST_SERVER = "rtmps://ingest-7c2e91.secret.invalid/INGEST-KEY-9f1d"
HMAC_SECRET = "HMAC-SOURCE-SECRET-51e0c7"
SECRETS = {
    "api token": API_TOKEN,
    "storage secret": STORAGE_SECRET,
    "storage access key": STORAGE_ACCESS_KEY,
    "stream key": STREAM_KEY,
    "ingest server": INGEST_SERVER,
    "hmac secret": HMAC_SECRET,
}

CLOUDEVENT_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")
JSON_TOPICS = ("recordings", "meetings", "decisions")

# Consumed a meeting while anyone is there: started at a join, stopped when the session empties.
RECORD_WHILE_PRESENT = {
    "rules": [
        {
            "name": "record-everyone",
            "on": "meeting.participantJoined",
            "action": "start_recording",
            "recording": {"file_name_prefix": "{meeting.id}"},
        },
        {
            "name": "stop-when-empty",
            "on": "meeting.participantLeft",
            "when": {"session.participants": 0},
            "action": "stop_recording",
        },
    ]
}

MetricKey = tuple[str, frozenset[tuple[str, str]]]


def metric(name: str, **labels: str) -> MetricKey:
    """The key of one sample in `Driver.metrics()`."""
    return name, frozenset(labels.items())


@dataclass
class Driver:
    """Talks to one router of a loop as RTK (or an internal sender) and reads what it made."""

    loop: Loop
    router: RunningRouter

    async def deliver(
        self,
        payload: Mapping[str, Any] | bytes,
        *,
        delivery_id: str | None = None,
        webhook_id: str = "wh-topics",
    ) -> dict[str, Any]:
        """POST a delivery signed with the emulator's key (the router trusts it); the answer."""
        body = payload if isinstance(payload, bytes) else encode_payload(payload)
        key = self.loop.emulator.state.private_key
        headers = rtk_headers(key, body, delivery_id=delivery_id, webhook_id=webhook_id)
        return await self._post(RTK_PATH, body, headers)

    async def deliver_internal(self, payload: Mapping[str, Any], secret: str) -> dict[str, Any]:
        """POST a delivery to the `internal` source, signed with its HMAC scheme."""
        body = encode_payload(payload)
        return await self._post(INTERNAL_PATH, body, hmac_headers(secret, body))

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        async with self.loop.http.post(
            self.router.url + path, data=body, headers=headers
        ) as response:
            answer: dict[str, Any] = await response.json()
            assert response.status == 200, answer
            return answer

    async def metrics_text(self) -> str:
        async with self.loop.http.get(self.router.url + "/metrics") as response:
            assert response.status == 200
            return await response.text()

    async def metrics(self) -> dict[MetricKey, float]:
        """Every sample of `/metrics`, by name and labels."""
        samples: dict[MetricKey, float] = {}
        for family in text_string_to_metric_families(await self.metrics_text()):
            for sample in family.samples:
                samples[metric(sample.name, **sample.labels)] = sample.value
        return samples

    async def wait_metric(self, key: MetricKey, value: float, timeout: float = 30.0) -> float:
        """Poll `/metrics` until the sample reaches `value`; the last value seen."""
        deadline = monotonic() + timeout
        while True:
            seen = (await self.metrics()).get(key, 0.0)
            if seen >= value or monotonic() > deadline:
                return seen
            await asyncio.sleep(0.2)

    async def messages(
        self,
        topic: str,
        *,
        key: str | None = None,
        expect: int = 0,
        until: Callable[[list[Consumed]], bool] | None = None,
        timeout: float = 30.0,
    ) -> list[Consumed]:
        """The messages of a topic (config name), only those keyed `key` if given, once at least
        `expect` are there and `until` holds (or the time is up: the caller's asserts show it)."""
        deadline = monotonic() + timeout
        while True:
            found = [r for r in await self.read(topic) if key is None or r.key == key.encode()]
            done = len(found) >= expect and (until is None or until(found))
            if done or monotonic() > deadline:
                return found
            # No pause: each read already waits a moment for news at the end.

    async def read(self, topic: str, idle: float = 0.1) -> list[Consumed]:
        """Every message of a topic (config name) now, partition by partition: up to the end
        offsets and then until `idle` s pass without a message (the embedded broker has been
        seen to report an end offset one short of its last message)."""
        kafka = self.loop.kafka
        name = getattr(kafka.topics, topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.loop.broker.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            parts = [TopicPartition(name, p) for p in range(kafka.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            found: list[Consumed] = []
            async with asyncio.timeout(30):
                while True:
                    batch = await consumer.getmany(timeout_ms=int(idle * 1000))
                    found.extend(consumed(m) for messages in batch.values() for m in messages)
                    caught_up = [await consumer.position(tp) >= ends[tp] for tp in parts]
                    if not batch and all(caught_up):
                        break
        finally:
            await consumer.stop()
        return sorted(found, key=lambda r: (r.partition, r.offset))

    async def settled(self, timeout: float = 30.0) -> None:
        """Wait until the router's worker has committed every webhook on the log so far: it
        commits only once all that a webhook caused is on its topics, so nothing is in flight."""
        kafka = self.loop.kafka
        ends: dict[int, int] = {}
        for record in await self.read("webhooks"):
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.loop.broker.bootstrap_servers,
            group_id=kafka.group_id,  # only to read the group's offsets; it never joins
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            deadline = monotonic() + timeout
            while True:
                behind = {
                    partition: end
                    for partition, end in ends.items()
                    if (
                        await consumer.committed(TopicPartition(kafka.topics.webhooks, partition))
                        or 0
                    )
                    < end
                }
                assert not behind or monotonic() < deadline, f"not committed: {behind}"
                if not behind:
                    return
                await asyncio.sleep(0.1)
        finally:
            await consumer.stop()

    async def values(
        self, topic: str, *, key: str | None = None, expect: int = 0, **options: Any
    ) -> list[dict[str, Any]]:
        """Like `messages`, the JSON values."""
        found = await self.messages(topic, key=key, expect=expect, **options)
        return [json.loads(r.value or b"null") for r in found]


async def start_driver(make_loop: Callable[..., Awaitable[Loop]], **sections: Any) -> Driver:
    """A loop with these config sections, one router wired to its emulator, and its driver."""
    loop = await make_loop(**sections)
    router = await loop.start_router()
    await wire(loop, router)
    return Driver(loop, router)


def has_type(record_type: str, count: int = 1, **fields: Any) -> Callable[[list[Consumed]], bool]:
    """An `until` condition: `count` JSON messages of this type with these field values."""

    def check(found: list[Consumed]) -> bool:
        values = [json.loads(r.value or b"null") for r in found]
        matching = [
            v
            for v in values
            if v.get("type") == record_type and all(v.get(k) == w for k, w in fields.items())
        ]
        return len(matching) >= count

    return check


def headers_of(record: Consumed) -> dict[str, str]:
    """A message's headers as text (each name once: the router never repeats one)."""
    names = [name for name, _ in record.headers]
    assert len(names) == len(set(names)), names
    return {name: value.decode() for name, value in record.headers}


def rtk_event(
    event: str,
    meeting_id: str,
    session_id: str,
    *,
    title: str | None = None,
    organization_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A payload of `event` for a meeting's session, as RTK would send it now; `title` and
    `organization_id` go where the event's shape has them (`meeting.summary` has no title)."""
    payload = sample_payload(
        event, now=now(), meeting_id=meeting_id, session_id=session_id, **extra
    )
    described = payload if event == "meeting.chatSynced" else payload["meeting"]
    if title is not None and "title" in described:
        described["title"] = title
    if organization_id is not None:
        described["organizedBy"] = {"id": organization_id, "name": "Organization"}
    return payload


def livestream_event(meeting_id: str, *, status: str = "LIVE", **fields: Any) -> dict[str, Any]:
    """A `livestreaming.statusUpdate` carrying the known stream key and ingest server."""
    payload = rtk_event("livestreaming.statusUpdate", meeting_id, str(uuid.uuid4()), **fields)
    payload.update(status=status, streamKey=STREAM_KEY, ingestServer=INGEST_SERVER)
    return payload


async def until_live(loop: Loop, meeting_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The emulator's view of a meeting once its session is live."""
    deadline = monotonic() + timeout
    while True:
        meetings = await loop.control("GET", "/meetings")
        found = [m for m in meetings if m["id"] == meeting_id and m["session_id"]]
        if found:
            return dict(found[0])
        assert monotonic() < deadline, f"meeting {meeting_id} never went live"
        await asyncio.sleep(0.05)


def all_topics(loop: Loop) -> Iterable[tuple[str, str]]:
    """(config name, topic name) of every topic of the loop's routers."""
    topics = loop.kafka.topics
    return [(name, getattr(topics, name)) for name in type(topics).model_fields]
