"""Writing to a broker from the benchmark: topics made up front, and webhooks appended the way
the router's receiver appends them, so that a worker can be started on a log already full.

A record here is what the router's receiver writes for a verified delivery: the raw body as
the value, the meeting id as the key (so the default partitioner, murmur2 over the topic's
partitions as in Kafka's Java client, puts it on the partition the router would), and the
delivery's headers with the router's own beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bench.bodies import EVENT, Signed
from router.clock import now, rfc3339

SOURCE = "realtimekit"  # the source name of the benchmark config
WEBHOOK_ID = "bench-webhook"  # the `rtk-webhook-id` the wrk script sends
_IN_FLIGHT = 5_000  # sends awaited together


def record_headers(item: Signed, delivery_id: str, received_at: str) -> list[tuple[str, bytes]]:
    """The headers the receiver writes for a delivery of `item`: the forwarded `rtk-*` ones,
    then the router's."""
    return [
        ("rtk-signature", item.signature.encode("ascii")),
        ("rtk-uuid", delivery_id.encode()),
        ("rtk-webhook-id", WEBHOOK_ID.encode()),
        ("router-source", SOURCE.encode()),
        ("router-event", EVENT.encode()),
        ("router-received-at", received_at.encode()),
        ("router-delivery-id", delivery_id.encode()),
    ]


async def create_topics(bootstrap: str, partitions: Mapping[str, int]) -> None:
    """Make each topic with its number of partitions (one that exists is left as it is)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for name, count in partitions.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, count, 1)], timeout_ms=10_000)
    finally:
        await admin.close()


async def append(bootstrap: str, topic: str, items: Sequence[Signed]) -> None:
    """Append `items` in order, as verified deliveries, each acknowledged by the broker."""
    # acks=all as the router asks; the embedded broker refuses idempotent producers.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        for start in range(0, len(items), _IN_FLIGHT):
            sends = []
            for item in items[start : start + _IN_FLIGHT]:
                delivery_id = str(uuid.uuid4())
                sends.append(
                    await producer.send(
                        topic,
                        item.body,
                        key=item.meeting_id.encode(),
                        headers=record_headers(item, delivery_id, rfc3339(now())),
                    )
                )
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
