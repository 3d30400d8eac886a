"""What the load did, read from outside the router: how many webhooks are on its log and how
far its worker has got (the consumer group's committed offsets; the worker commits an event
only once its effects are acknowledged), and which recordings the emulator started when."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

GROUP, TOPIC = "rtk-router", "rtk.webhooks"  # the defaults the benchmark config keeps


async def webhook_log(bootstrap: str) -> tuple[int, int]:
    """(webhooks on the log, webhooks the worker group has committed)."""
    # A consumer that names the group but never subscribes reads its offsets without joining.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,  # the embedded broker holds a fetch for all of its wait
    )
    try:
        await consumer.start()
        parts = [
            TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())
        ]
        total = done = 0
        for tp in parts:
            total += await _log_end(consumer, tp)
            offset = await consumer.committed(tp)
            done += offset if offset is not None and offset > 0 else 0
        return total, done
    finally:
        await consumer.stop()


async def _log_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The offset after the last message of a partition.

    The embedded broker reports the end of a partition as one past the first message of its
    last batch, however many that batch holds; so the last batch is read to find its end.
    """
    reported = (await consumer.end_offsets([tp]))[tp]
    if reported == 0:
        return 0
    consumer.assign([tp])
    consumer.seek(tp, reported - 1)
    batch = await consumer.getmany(tp, timeout_ms=2000)
    offsets = [record.offset for record in batch.get(tp, [])]
    return max([reported - 1, *offsets]) + 1


async def wait_caught_up(bootstrap: str, timeout: float) -> tuple[int, float]:
    """Wait until the worker has committed every webhook; (how many are left, seconds)."""
    started = time.monotonic()
    left = -1
    while time.monotonic() - started < timeout:
        total, done = await webhook_log(bootstrap)
        left = total - done
        if left == 0:
            break
        await asyncio.sleep(0.25)
    return left, time.monotonic() - started


async def emulator_starts(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    """Successful `POST /recordings` by meeting id: the monotonic time the first arrived."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with http.get(base_url + "/_emulator/calls", timeout=timeout) as response:
        rows: Any = await response.json()
    calls = rows["calls"] if isinstance(rows, dict) else rows
    first: dict[str, float] = {}
    for call in calls:
        meeting = call.get("meeting_id")
        if call.get("call") == "start_recording" and call.get("status", 500) < 300 and meeting:
            first.setdefault(meeting, float(call["at"]))
    return first
