"""The router's receiver alone against the least a correct receiver does (the verifying server):
the same wrk script and load against each, one after the other, each with a broker of its own.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import feed, probe, profile
from bench.bodies import Signed
from bench.configs import PARTITIONS, SOURCE_PATH
from bench.loadgen import fixed_rate
from bench.machine import process_cpu
from bench.phases import Run, cpu_names
from bench.procs import Child, wait_http, wait_port
from bench.stats import ratio
from bench.wrk import WrkResult, run_wrk
from router.broker import free_port

VERIFIED_TOPIC = "bench.verified"  # the verifying server's topic


@dataclass(frozen=True)
class Served:
    """One server's wrk run: its CPU and its broker's, per request."""

    wrk: WrkResult
    cpu_ms: float  # the server process
    broker_ms: float  # its broker
    appended: int  # messages on its topic after the run (the warm-up's included)


@dataclass(frozen=True)
class Verify:
    """The receiver and the verifying server under the same load."""

    verifying: Served
    receiver: Served

    @property
    def ratio(self) -> float:
        """Throughput of the receiver over that of the verifying server."""
        return ratio(self.receiver.wrk.rps, self.verifying.wrk.rps)

    @property
    def cpu_ratio(self) -> float:
        """CPU per request of the verifying server over the receiver's: what the throughput
        ratio would be with each server process on a core of its own."""
        return ratio(self.verifying.cpu_ms, self.receiver.cpu_ms)


async def _measure(
    run: Run, url: str, script: Path, warm: Sequence[Signed], server: list[int], broker: list[int]
) -> tuple[WrkResult, float, float]:
    """The warm-up every router gets (a few hundred requests with rtk-uuids of their own: a
    wrk warm-up would send the measured run's uuids first, and the router would answer those
    as duplicates), then the measured run, with the CPU of `server` and `broker`."""
    o = run.options
    target = url + SOURCE_PATH
    shots = await fixed_rate(target, warm, rate=500, count=len(warm))
    failed = sum(1 for s in shots if s.status != 200)
    if failed:
        raise RuntimeError(f"{failed} of {len(shots)} warm-up requests to {url} failed")
    recorder = None
    if o.profile is not None:
        recorder = asyncio.create_task(profile.record(server[0], o.wrk_seconds, o.profile))
    before = process_cpu(server + broker)
    result = await run_wrk(
        target, script, seconds=o.wrk_seconds, threads=o.wrk_threads, connections=o.connections
    )
    after = process_cpu(server + broker)
    if recorder is not None:
        for line in await recorder:
            run.say(f"    {line}")
    n = result.requests

    def per_request(pids: list[int]) -> float:
        spent = sum(after[p] - before[p] for p in pids)
        return spent / n * 1000 if n else math.nan

    return result, per_request(server), per_request(broker)


async def verifying(run: Run, script: Path, warm: Sequence[Signed]) -> Served:
    """wrk against the verifying server, on a `router broker` of its own."""
    broker_port = free_port()
    broker = run.procs.broker("verify-broker", broker_port)
    server: Child | None = None
    try:
        await wait_port(broker_port, broker)
        bootstrap = f"127.0.0.1:{broker_port}"
        await feed.create_topics(bootstrap, {VERIFIED_TOPIC: PARTITIONS})
        port = free_port()
        path = Path(__file__).resolve().parent / "verifying_server.py"
        args = [sys.executable, str(path), "--port", str(port), "--loop", run.options.bare_loop]
        args += ["--public-key", str(run.keys.public), "--bootstrap", bootstrap]
        server = run.procs.start("verifying", [*args, "--topic", VERIFIED_TOPIC])
        url = f"http://127.0.0.1:{port}"
        await wait_http(run.http, url + "/healthz", server)
        broker.note_descendants()
        brokers = [broker.pid, *broker.descendants]
        result, cpu_ms, broker_ms = await _measure(run, url, script, warm, [server.pid], brokers)
        appended, _ = await probe.webhook_log(bootstrap, VERIFIED_TOPIC)
        return Served(result, cpu_ms, broker_ms, appended)
    finally:
        if server is not None:
            await run.procs.stop(server)
        await run.procs.stop(broker)


async def receiver(run: Run, script: Path, warm: Sequence[Signed]) -> Served:
    """wrk against `router serve --role receiver` (no worker), with its embedded broker."""
    router = await run.start_router(role="receiver")
    try:
        names = cpu_names(router.child)
        brokers = [p for p, name in names.items() if name == "broker"]
        routers = [p for p in names if p not in brokers]
        result, cpu_ms, broker_ms = await _measure(run, router.url, script, warm, routers, brokers)
        appended, _ = await probe.webhook_log(router.bootstrap)
        return Served(result, cpu_ms, broker_ms, appended)
    finally:
        await run.procs.stop(router.child)


async def verify(run: Run, script: Path, warm: Sequence[Signed]) -> Verify:
    """The verifying server, then the receiver, each warmed up with `warm`, under the same
    wrk load."""
    return Verify(await verifying(run, script, warm), await receiver(run, script, warm))
