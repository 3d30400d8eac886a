"""The worker alone on a full log: webhooks appended to a broker before `router serve --role
worker` starts, and the CPU its process needs to process all of them, read from /proc.

Nothing here knows the worker's internals: what it has done is read from its consumer group's
committed offsets (it commits an event once its effects are acknowledged), what it cost from
/proc, what it asked of RTK from the emulator's call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench import feed, probe, profile
from bench.bodies import Signed
from bench.configs import (
    NEVER_TITLE_PREFIX,
    PARTITIONS,
    RECORD_TITLE_PREFIX,
    router_config,
    write_router_config,
)
from bench.machine import process_cpu
from bench.phases import Run
from bench.procs import Child, wait_port
from router.broker import free_port

_POLL_SECONDS = 0.05  # how often the committed offsets are read
STARTUP_EVENTS = 12  # on the log of the start-up baseline's worker


@dataclass(frozen=True)
class Drained:
    """One worker process from its start until it had committed a log appended beforehand."""

    events: int  # on the log before the worker started
    processed: int  # committed when the run ended (events, unless it timed out)
    cpu_seconds: float  # the worker process's CPU from its start until then
    wall_seconds: float  # from its start until then
    first_commit_seconds: float  # from its start until it had first committed anything
    first_committed: int  # how many it had committed then
    starts: int | None = None  # recordings the emulator started for these meetings
    recorded: int = 0  # meetings titled so that the policy starts their recording

    @property
    def complete(self) -> bool:
        """Whether the worker committed every event in time."""
        return self.processed >= self.events

    @property
    def rate(self) -> float:
        """Events per second from its first commit to its last (start-up left out)."""
        span = self.wall_seconds - self.first_commit_seconds
        done = self.processed - self.first_committed
        return done / span if span > 0 else math.nan


def per_event_us(drained: Drained, startup_cpu: float) -> float:
    """CPU microseconds per event: the run's CPU less the start-up's, over the events."""
    if not drained.complete or drained.events == 0:
        return math.nan
    return (drained.cpu_seconds - startup_cpu) / drained.events * 1e6


def recorded_meetings(items: Sequence[Signed]) -> set[str]:
    """The meetings of `items` whose title the recording policy matches."""
    return {s.meeting_id for s in items if f'"title":"{RECORD_TITLE_PREFIX}'.encode() in s.body}


def _cpu(child: Child) -> float:
    """CPU seconds of the worker process (and any it started) so far."""
    child.note_descendants()
    return sum(process_cpu([child.pid, *child.descendants]).values())


async def run_worker(run: Run, name: str, items: Sequence[Signed], *, record: bool) -> Drained:
    """A fresh broker with `items` on its webhooks log, then `router serve --role worker` on
    it, until its group has committed them all (or `drain_timeout` passes). With `record` the
    policy starts a recording for each `Rec…` meeting, else its rule matches no meeting."""
    async with worked_log(run, name, items, record=record) as worked:
        return worked.drained


@dataclass(frozen=True)
class Worked:
    """A log a worker has processed, on a broker still running: what the worker did, where
    the broker is, and the worker's config."""

    drained: Drained
    bootstrap: str
    config: dict[str, Any]


@contextlib.asynccontextmanager
async def worked_log(
    run: Run, name: str, items: Sequence[Signed], *, record: bool
) -> AsyncIterator[Worked]:
    """`run_worker`, with the broker kept running (the worker stopped) inside the block."""
    broker_port = free_port()
    broker = run.procs.broker(f"{name}-broker", broker_port)
    worker: Child | None = None
    recorder: asyncio.Task[list[str]] | None = None
    try:
        await wait_port(broker_port, broker)
        bootstrap = f"127.0.0.1:{broker_port}"
        await feed.create_topics(bootstrap, {probe.TOPIC: PARTITIONS})
        await feed.append(bootstrap, probe.TOPIC, items)
        on_log, _ = await probe.webhook_log(bootstrap)
        if on_log != len(items):
            raise RuntimeError(f"{on_log:,} webhooks on the log, {len(items):,} appended")
        config = router_config(
            port=free_port(),
            broker_port=0,
            public_key=run.keys.public,
            emulator=run.emulator,
            broker=bootstrap,
            title_prefix=RECORD_TITLE_PREFIX if record else NEVER_TITLE_PREFIX,
        )
        path = write_router_config(run.workdir / f"{name}.json", config)
        async with probe.Commits(bootstrap) as commits:
            started = time.monotonic()
            worker = run.procs.router(name, path, role="worker")
            if run.options.profile is not None and name == "drain-plain":
                # (sampled until the worker is stopped below)
                recorder = asyncio.create_task(
                    profile.record(worker.pid, run.options.drain_timeout, run.options.profile)
                )
            drained = await _watch(run, worker, commits, len(items), started)
        if record:
            wanted = recorded_meetings(items)
            starts = await probe.emulator_starts(run.http, run.emulator.base_url)
            drained = replace(drained, starts=len(wanted & starts.keys()), recorded=len(wanted))
        await run.procs.stop(worker)
        worker = None
        yield Worked(drained, bootstrap, config)
    finally:
        if worker is not None:
            await run.procs.stop(worker)
        if recorder is not None:
            for line in await recorder:
                run.say(f"    {line}")
        await run.procs.stop(broker)


async def _watch(
    run: Run, worker: Child, commits: probe.Commits, events: int, started: float
) -> Drained:
    deadline = started + run.options.drain_timeout
    first_at, first = math.nan, 0
    done = 0
    while time.monotonic() < deadline:
        if not worker.running:
            raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        done = await commits.total()
        at = time.monotonic()
        if done >= events:
            cpu = _cpu(worker)
            if math.isnan(first_at):
                first_at, first = at, done
            return Drained(events, done, cpu, at - started, first_at - started, first)
        if done > 0 and math.isnan(first_at):
            first_at, first = at, done
        await asyncio.sleep(_POLL_SECONDS)
    cpu = _cpu(worker)
    return Drained(events, done, cpu, time.monotonic() - started, first_at - started, first)


@dataclass(frozen=True)
class Drain:
    """The drain phase: the start-up baseline, the run whose policy matches nothing, and the
    run where one meeting in ten gets a recording."""

    startup_cpu: float  # a worker's CPU from its start until it had committed a few events
    startup_events: int
    plain: Drained
    recording: Drained | None

    @property
    def plain_us(self) -> float:
        """CPU µs per event of the run whose policy matches nothing."""
        return per_event_us(self.plain, self.startup_cpu)

    @property
    def recording_us(self) -> float:
        """CPU µs per event of the run with recordings."""
        return per_event_us(self.recording, self.startup_cpu) if self.recording else math.nan


async def drain(
    run: Run, items: Sequence[Signed], baseline: Sequence[Signed], *, record: bool = True
) -> Drain:
    """The start-up baseline on `baseline` (a handful of events), then `items` twice: once
    with a policy that matches nothing, once (with `record`) with the recording policy."""
    base = await run_worker(run, "drain-startup", baseline, record=False)
    if not base.complete:
        raise RuntimeError(f"the start-up worker did not commit its {base.events} events")
    plain = await run_worker(run, "drain-plain", items, record=False)
    recording = await run_worker(run, "drain-recording", items, record=True) if record else None
    return Drain(base.cpu_seconds, base.events, plain, recording)
