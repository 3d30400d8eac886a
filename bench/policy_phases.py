"""The measurements of the worker's side: how soon a join starts a recording, and how much
memory the router holds for many meetings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import probe
from bench.bodies import Signed
from bench.configs import SOURCE_PATH
from bench.loadgen import fixed_rate
from bench.machine import Others, process_cpu, process_rss_mib
from bench.phases import Router, Run
from bench.stats import Latency


@dataclass(frozen=True)
class JoinToStart:
    """From a join's send to the emulator receiving its `POST /recordings`."""

    latency: Latency
    joins: int
    started: int
    failed_sends: int
    others: float  # CPU of processes outside the benchmark, % of one core
    emulator: float  # CPU of the RTK emulator, % of one core


async def join_to_start(run: Run, router: Router, joins: Sequence[Signed]) -> JoinToStart:
    """Joins of new `Rec…` meetings at `join_rate`; match each to its recording start.

    Both sides read CLOCK_MONOTONIC (Python's `time.monotonic` on Linux), which is one clock
    for every process of the machine, so a send time here and the emulator's arrival time
    of the start call compare directly.
    """
    o = run.options
    url = router.url + SOURCE_PATH
    others = Others(run.own_pids(router))
    emulator = [run.emulator_pid] if run.emulator_pid is not None else []
    emulator_before, started = process_cpu(emulator), time.monotonic()
    shots = await fixed_rate(url, joins, rate=o.join_rate, count=len(joins))
    busy = others.percent()
    emulator_after = process_cpu(emulator)
    emulator_share = sum(emulator_after[p] - emulator_before[p] for p in emulator)
    emulator_share = emulator_share / (time.monotonic() - started) * 100
    sent = {s.meeting_id: s.sent for s in shots if s.status == 200}
    deadline = time.monotonic() + 60
    starts: dict[str, float] = {}
    while time.monotonic() < deadline:
        starts = await probe.emulator_starts(run.http, run.emulator.base_url)
        if all(m in starts for m in sent):
            break
        await asyncio.sleep(0.5)
    first = shots[0].due if shots else 0.0
    # The first second opens connections to the router and the emulator; it is not counted.
    counted = {s.meeting_id for s in shots if s.due - first >= 1.0}
    samples = [starts[m] - t for m, t in sent.items() if m in starts and m in counted]
    return JoinToStart(
        latency=Latency.of_seconds(samples),
        joins=len(shots),
        started=sum(1 for m in sent if m in starts),
        failed_sends=len(shots) - len(sent),
        others=busy,
        emulator=emulator_share,
    )


@dataclass(frozen=True)
class Memory:
    """Resident memory of a router process, idle and with the meetings held."""

    idle_mib: float
    loaded_mib: float
    meetings: int
    caught_up: bool


async def memory(
    run: Run, router: Router, filler: Sequence[Signed], *, held: int, idle_mib: float
) -> Memory:
    """Join `filler` new meetings on top of the `held` ones, wait until the worker has them
    all in its state, then read the router's resident memory from /proc."""
    await fixed_rate(router.url + SOURCE_PATH, filler, rate=1000, count=len(filler))
    lag, _ = await router.caught_up(run.options.drain_timeout)
    await asyncio.sleep(1.0)
    rss = process_rss_mib(router.child.pid)
    return Memory(idle_mib, rss, held + len(filler), lag == 0)
