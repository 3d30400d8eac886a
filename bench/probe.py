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


async def webhook_log(bootstrap: str, topic: str = TOPIC) -> tuple[int, int]:
    """(webhooks on the log, webhooks the worker group has committed); of another `topic`,
    (its messages, what the group committed of it)."""
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
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
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
    return int(max([reported - 1, *offsets])) + 1


class Commits:
    """The worker group's committed offsets of the webhooks log, read as often as wanted over
    one connection (`async with Commits(bootstrap) as commits: await commits.total()`)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=GROUP,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        self._parts: list[TopicPartition] = []

    async def __aenter__(self) -> Commits:
        await self._consumer.start()
        found = self._consumer.partitions_for_topic(TOPIC) or ()
        self._parts = [TopicPartition(TOPIC, p) for p in sorted(found)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def total(self) -> int:
        """Webhooks the group has committed, over every partition."""
        done = 0
        for tp in self._parts:
            offset = await self._consumer.committed(tp)
            done += offset if offset is not None and offset > 0 else 0
        return done


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


async def reset_emulator(http: aiohttp.ClientSession, base_url: str) -> None:
    """Forget every meeting, recording and call the emulator holds: a phase that replays the
    meetings of an earlier one must not find their recordings still active at RTK."""
    async with http.post(base_url + "/_emulator/reset", timeout=aiohttp.ClientTimeout(30)) as r:
        r.raise_for_status()


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
