"""A meeting's records read whole from the four topics, as the story builder takes them.

Until `router why`'s reader is here to share, this reads every partition and keeps the
messages keyed by the meeting (slower than reading the one partition the key maps to)."""

from __future__ import annotations

from router.config import KafkaConfig
from router.core.story import TOPICS, StoryRecord
from router.kafka import Consumed, read_partitions
from router.kafka.readers import partition_counts


def reader_bootstrap(config: KafkaConfig) -> str:
    """Where the broker of a running router is: `embedded` means 127.0.0.1:`embedded_port`."""
    return f"127.0.0.1:{config.embedded_port}" if config.embedded else config.bootstrap_servers


async def read_records(config: KafkaConfig, meeting_id: str) -> list[StoryRecord]:
    """Every record keyed by `meeting_id` on the four topics, as of now."""
    names = {getattr(config.topics, topic): topic for topic in TOPICS}
    bootstrap = reader_bootstrap(config)
    counts = await partition_counts(config, bootstrap, list(names))
    key = meeting_id.encode()
    records: list[StoryRecord] = []
    for topic, count in counts.items():
        async for batch in read_partitions(config, bootstrap, topic, range(count or 0)):
            records.extend(story_record(names[m.topic], m) for m in batch if m.key == key)
    return records


def story_record(topic: str, message: Consumed) -> StoryRecord:
    """A message as the story builder takes it, its topic named as in the configuration."""
    return StoryRecord(
        topic=topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=message.timestamp_ms,
        headers={name: (raw or b"").decode("utf-8", "replace") for name, raw in message.headers},
        value=message.value,
        key=None if message.key is None else message.key.decode("utf-8", "replace"),
    )
