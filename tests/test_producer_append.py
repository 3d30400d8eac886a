"""The producer's direct append (`router.kafka.placement`): under load, messages go straight into
their partition's open batch instead of through aiokafka's `send`, and arrive on the log as
`send` would put them there: every one once, in order per key, with their keys and headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from router.broker import EmbeddedBroker
from router.config import Settings
from router.kafka import Outgoing, Publisher, TopicAdmin, read_partitions

KEYS = [f"meeting-{n}".encode() for n in range(10)]


async def _read_back(settings: Settings, bootstrap: str, topic: str) -> list[tuple[bytes, ...]]:
    found = []
    async for batch in read_partitions(
        settings.kafka, bootstrap, topic, range(settings.kafka.partitions)
    ):
        found += [(m.key or b"", m.value or b"", *(v for _, v in m.headers)) for m in batch]
    return found


async def test_a_large_batch_arrives_whole_and_in_order_per_key(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    bootstrap = broker.bootstrap_servers
    admin = TopicAdmin(settings.kafka, bootstrap, ["t.append"])
    assert await admin.ensure() == []
    publisher = Publisher(settings.kafka, bootstrap, admin)
    await publisher.start()
    try:
        messages = [
            Outgoing("t.append", KEYS[n % 10], b"%d" % n, [("n", b"%d" % n), ("k", KEYS[n % 10])])
            for n in range(3000)
        ]
        unsent = await publisher.send_all(messages, timeout=30)
        assert not unsent.messages, unsent.error
        # and one at a time, many at once, as the receiver publishes
        singles = await asyncio.gather(
            *(
                publisher.publish(
                    "t.append",
                    b"%d" % n,
                    key=KEYS[n % 10],
                    headers=[("n", b"%d" % n), ("k", KEYS[n % 10])],
                    timeout=30,
                )
                for n in range(3000, 3500)
            )
        )
        assert len(set(singles)) == 500  # each its own (partition, offset)
        assert publisher.direct_appends > 0  # the direct path was taken
    finally:
        await publisher.stop()
        await admin.close()
    found = await _read_back(settings, bootstrap, "t.append")
    assert sorted(int(value) for _, value, *_ in found) == list(range(3500))
    for key, value, number, header_key in found:
        assert number == value
        assert header_key == key == KEYS[int(value) % 10]
    for key in KEYS:
        mine = [int(value) for k, value, *_ in found if k == key]
        batched = [n for n in mine if n < 3000]
        assert batched == sorted(batched)  # send_all keeps each key's order
