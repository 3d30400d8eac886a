"""`router tail`: every message of a topic, one JSON line each (topic, partition, offset, key,
headers, value), read without joining a consumer group so it never disturbs the router."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TextIO

from router.config import KafkaConfig
from router.kafka import Consumed, TopicReader, reader_bootstrap


async def tail_topic(
    config: KafkaConfig,
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_exit: float | None,
    out: TextIO,
) -> int:
    """Print messages until `limit`, `idle_exit` seconds of silence, or cancellation."""
    bootstrap = reader_bootstrap(config)
    printed = 0
    async with TopicReader(config, bootstrap, topic, from_beginning=from_beginning) as reader:
        idle = 0.0
        while limit is None or printed < limit:
            batch = await reader.fetch(timeout=0.5)
            if not batch:
                idle += 0.5
                if idle_exit is not None and idle >= idle_exit:
                    break
                continue
            idle = 0.0
            for record in batch:
                out.write(json.dumps(render(record), ensure_ascii=False) + "\n")
                printed += 1
                if limit is not None and printed >= limit:
                    break
            out.flush()
            await asyncio.sleep(0)
    return printed


def render(record: Consumed) -> dict[str, Any]:
    """A record as a JSON-ready dict; values that are JSON are embedded, others are text."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": _text(record.key),
        "headers": {name: _text(value) for name, value in record.headers},
        "value": _value(record.value),
    }


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _value(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value.decode("utf-8", "replace")
