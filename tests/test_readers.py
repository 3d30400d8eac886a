"""Reading partitions to their end without a consumer group (`router.kafka.readers`), against
the embedded broker, whose answer for a partition's end offset lags behind record batches of
more than one message: every message of a batched log is read, not one less."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from router.broker import EmbeddedBroker
from router.config import KafkaConfig, Settings
from router.kafka import (
    Outgoing,
    Publisher,
    TopicAdmin,
    key_partition,
    read_key_partitions,
    read_partitions,
)

KEYS = [f"m-{n}".encode() for n in range(10)]


async def fill(
    kafka: KafkaConfig, bootstrap: str, topics: list[str], count: int, chunk: int = 1500
) -> None:
    """`count` messages on each topic, sent `chunk` at a time as the worker sends its records
    (the producer puts each partition's share of a chunk in one record batch)."""
    admin = TopicAdmin(kafka, bootstrap, topics)
    assert await admin.ensure() == []
    publisher = Publisher(kafka, bootstrap, admin)
    await publisher.start()
    try:
        for topic in topics:
            messages = [
                Outgoing(topic, KEYS[n % len(KEYS)], str(n).encode(), []) for n in range(count)
            ]
            for start in range(0, count, chunk):
                unsent = await publisher.send_all(messages[start : start + chunk], timeout=30)
                assert not unsent.messages, unsent.error
    finally:
        await publisher.stop()
        await admin.close()


async def test_whole_partitions_are_read_to_their_last_message(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> None:
    kafka = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}).kafka
    await fill(kafka, broker.bootstrap_servers, ["t.whole"], 4500, chunk=4500)
    offsets: dict[int, list[int]] = {}
    async for batch in read_partitions(
        kafka, broker.bootstrap_servers, "t.whole", range(kafka.partitions)
    ):
        for message in batch:
            offsets.setdefault(message.partition, []).append(message.offset)
    assert sum(len(found) for found in offsets.values()) == 4500
    for found in offsets.values():
        assert found == list(range(len(found)))


async def test_the_partitions_of_a_key_are_read_for_that_key_only(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> None:
    kafka = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}).kafka
    topics = ["t.one", "t.two", "t.three"]
    await fill(kafka, broker.bootstrap_servers, topics, 3000)
    key = KEYS[3]
    seen: Counter[str] = Counter()
    async for batch in read_key_partitions(kafka, broker.bootstrap_servers, topics, key):
        for message in batch:
            assert message.key == key
            assert message.partition == key_partition(key, range(kafka.partitions))
            seen[message.topic] += 1
    assert seen == dict.fromkeys(topics, 300)
