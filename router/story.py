"""Reading a meeting's story off the topics (`router why`, the console): the one partition of
the meetings, decisions, recordings and dead-letter topics that the meeting's id is keyed to,
each read from its start to its end as of the call, without a consumer group. What the records
say is `router.core.story`'s business."""

from __future__ import annotations

from router.config import KafkaConfig
from router.core.story import TOPICS, Story, StoryRecord, build_story
from router.envelope import APP
from router.kafka import Consumed, read_key_partitions, reader_bootstrap


async def read_story(config: KafkaConfig, meeting_id: str, *, app: str | None = None) -> Story:
    """The story of `meeting_id` as the topics tell it now (with `app`, of that app's records
    only). Raises LookupError naming a topic that does not exist, and KafkaError/OSError
    (`router.kafka.BROKER_ERRORS`) when the broker cannot be reached."""
    return build_story(meeting_id, of_app(await read_records(config, meeting_id), app))


def of_app(records: list[StoryRecord], app: str | None) -> list[StoryRecord]:
    """The records of one app (all of them when `app` is None)."""
    if app is None:
        return records
    return [r for r in records if r.headers.get(APP) == app]


async def read_records(config: KafkaConfig, meeting_id: str) -> list[StoryRecord]:
    """The messages of the partitions `meeting_id` is keyed to, as the story builder takes
    them (the console keeps them to add what follows); raises as `read_story` does."""
    names = {getattr(config.topics, topic): topic for topic in TOPICS}
    key = meeting_id.encode()
    records: list[StoryRecord] = []
    batches = read_key_partitions(config, reader_bootstrap(config), list(names), key)
    async for batch in batches:
        records.extend(story_record(names[m.topic], m) for m in batch)
    return records


def story_record(topic: str, message: Consumed) -> StoryRecord:
    """A message as the story builder takes it, `topic` named as in the configuration."""
    return StoryRecord(
        topic=topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=message.timestamp_ms,
        headers={name: (raw or b"").decode("utf-8", "replace") for name, raw in message.headers},
        value=message.value,
        key=None if message.key is None else message.key.decode("utf-8", "replace"),
    )
