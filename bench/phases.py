"""The throughput and latency measurements, on processes started for the purpose and stopped
at the end of their phase. Every router gets a fresh embedded broker on its own port."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from bench import probe
from bench.bodies import Signed
from bench.configs import SOURCE_PATH, Emulator, Keys, router_config, write_router_config
from bench.loadgen import Shot, fixed_rate
from bench.machine import MachineLoad, Others, command_line, command_name, process_cpu
from bench.plan import Plan
from bench.procs import Child, Processes, wait_http
from bench.stats import Latency
from bench.wrk import WrkResult, run_wrk
from router.broker import free_port

Say = Callable[[str], None]


@dataclass(frozen=True)
class Router:
    """A started `router serve`: its process, URL and broker."""

    child: Child
    url: str
    bootstrap: str
    role: str
    others: tuple[Child, ...] = ()  # a worker process of its own, when the roles are apart

    async def caught_up(self, timeout: float) -> tuple[int, float]:
        """Wait until its worker has committed every webhook; (lag left, seconds waited)."""
        return await probe.wait_caught_up(self.bootstrap, timeout)


@dataclass
class Run:
    """What every phase needs: processes, HTTP client, keys, emulator, options, output."""

    procs: Processes
    http: aiohttp.ClientSession
    workdir: Path
    keys: Keys
    emulator: Emulator
    options: Plan
    say: Say
    routers: int = field(default=0)
    emulator_pid: int | None = None

    def own_pids(self, router: Router, *more: Child) -> list[int]:
        """The benchmark's processes that a phase runs on: a router (and what it started),
        more children, the emulator."""
        pids = []
        for child in (router.child, *router.others, *more):
            child.note_descendants()
            pids += [child.pid, *child.descendants]
        return pids + ([self.emulator_pid] if self.emulator_pid is not None else [])

    async def start_router(
        self, workers: int = 1, role: str = "all", sections: dict[str, Any] | None = None
    ) -> Router:
        """A router on fresh ports with its own broker (and these config `sections` added),
        once ready and (when it has a worker) once every worker process holds its partitions."""
        self.routers += 1
        port, broker_port = free_port(), free_port()
        config = router_config(
            port=port, broker_port=broker_port, public_key=self.keys.public, emulator=self.emulator
        )
        config.update(sections or {})
        name = f"router-{self.routers}-w{workers}"
        path = write_router_config(self.workdir / f"{name}.json", config)
        child = self.procs.router(name, path, workers, role)
        router = Router(child, f"http://127.0.0.1:{port}", f"127.0.0.1:{broker_port}", role)
        await wait_http(self.http, router.url + "/readyz", child, timeout=90)
        if role != "receiver":
            await _await_assignments(child, workers)
        return router

    async def start_split(self) -> tuple[Router, Child]:
        """`router serve --role receiver` with its broker, and `--role worker` on that broker
        in a second process: the deployment where the worker has a core of its own."""
        receiver = await self.start_router(role="receiver")
        port = free_port()
        config = router_config(
            port=port,
            broker_port=0,
            public_key=self.keys.public,
            emulator=self.emulator,
            broker=receiver.bootstrap,
        )
        name = f"router-{self.routers}-worker"
        worker = self.procs.router(
            name, write_router_config(self.workdir / f"{name}.json", config), role="worker"
        )
        await wait_http(self.http, f"http://127.0.0.1:{port}/readyz", worker, timeout=90)
        await _await_assignments(worker, 1)
        return Router(receiver.child, receiver.url, receiver.bootstrap, "split", (worker,)), worker


async def _await_assignments(child: Child, workers: int) -> None:
    """Ready is not yet consuming: wait until each worker process holds partitions."""
    deadline = time.monotonic() + 60
    while _assignments(child) < workers and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


def _assignments(child: Child) -> int:
    """`partitions assigned` log lines with partitions in them."""
    return sum(
        1
        for line in child.log_tail(1_000_000).splitlines()
        if '"partitions assigned"' in line and '"partitions":[]' not in line
    )


async def warm_up(run: Run, router: Router, warm: Sequence[Signed]) -> None:
    """A few hundred requests, so that connections, caches and the producer are warm, and
    (with a worker) until the worker has finished them."""
    shots = await fixed_rate(router.url + SOURCE_PATH, warm, rate=500, count=len(warm))
    failed = sum(1 for s in shots if s.status != 200)
    if failed:
        raise RuntimeError(f"{failed} of {len(shots)} warm-up requests failed")
    if router.role != "receiver":
        lag, _ = await router.caught_up(60)
        if lag:
            raise RuntimeError(f"the worker did not finish the warm-up ({lag} left)")


@dataclass(frozen=True)
class Bare:
    """The bare server's wrk run and its CPU per request."""

    wrk: WrkResult
    cpu_ms: float


async def bare(run: Run, script: Path) -> Bare:
    """wrk against the bare aiohttp server, after a short warm-up run."""
    port = free_port()
    server = Path(__file__).resolve().parent / "bare_server.py"
    args = [sys.executable, str(server), "--port", str(port), "--loop", run.options.bare_loop]
    child = run.procs.start("bare", args)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(run.http, url + "/healthz", child)
        o = run.options
        await run_wrk(url + SOURCE_PATH, script, seconds=2, threads=1, connections=o.connections)
        before = process_cpu([child.pid])[child.pid]
        result = await _wrk(run, url + SOURCE_PATH, script)
        spent = process_cpu([child.pid])[child.pid] - before
        return Bare(result, spent / result.requests * 1000 if result.requests else math.nan)
    finally:
        await run.procs.stop(child)


async def _wrk(run: Run, url: str, script: Path) -> WrkResult:
    o = run.options
    return await run_wrk(
        url, script, seconds=o.wrk_seconds, threads=o.wrk_threads, connections=o.connections
    )


@dataclass(frozen=True)
class Ingest:
    """A wrk run against a router, the CPU it took, and what its worker then made of it."""

    wrk: WrkResult
    cpu: dict[str, float]  # per cent of one core during the wrk run, by process
    appended: int  # webhooks put on the log during the run
    cpu_ms: float  # router CPU (all its processes, worker included) per appended webhook
    backlog: int | None = None  # webhooks the worker had not finished when wrk stopped
    drain_seconds: float | None = None  # None: not drained within the timeout

    def describe_cpu(self) -> str:
        """`router 98%, broker 35%` and so on (idle helpers left out)."""
        shares = (f"{name} {share:.0f}%" for name, share in self.cpu.items() if share >= 0.5)
        return ", ".join(shares)


def cpu_names(child: Child) -> dict[int, str]:
    child.note_descendants()
    names = {child.pid: "router"}
    workers = 0
    for pid in sorted(child.descendants):
        if "resource_tracker" in command_line(pid):
            names[pid] = "helper"
        elif command_name(pid).startswith("python"):
            workers += 1
            names[pid] = f"router process {workers}"
        else:
            names[pid] = "broker"
    if workers:
        names[child.pid] = "supervisor"
    return names


async def ingest(run: Run, router: Router, script: Path) -> Ingest:
    """wrk at full speed, with the CPU each process used; then the worker's backlog, how long
    it took to finish it, and the router's CPU per webhook once it had."""
    names = cpu_names(router.child)
    routers = [p for p, name in names.items() if name != "broker"]
    on_log, _ = await probe.webhook_log(router.bootstrap)
    cpu_before, clock_before = process_cpu(list(names)), time.monotonic()
    machine = MachineLoad()
    result = await _wrk(run, router.url + SOURCE_PATH, script)
    used = process_cpu(list(names))
    elapsed = time.monotonic() - clock_before
    cpu = {names[p]: (used[p] - cpu_before[p]) / elapsed * 100 for p in names}
    cpu["wrk"] = result.cpu_seconds / elapsed * 100
    cpu["rest of the machine"] = max(0.0, machine.percent() - sum(cpu.values()))
    total, done = await probe.webhook_log(router.bootstrap)
    appended = total - on_log
    backlog = drained = None
    if router.role != "receiver":
        backlog = total - done
        lag, waited = await router.caught_up(run.options.drain_timeout)
        drained = waited if lag == 0 else None
    after = process_cpu(routers)
    spent = sum(after[p] - cpu_before[p] for p in routers)
    cpu_ms = spent / appended * 1000 if appended else math.nan
    return Ingest(result, cpu, appended, cpu_ms, backlog, drained)


@dataclass(frozen=True)
class FixedRate:
    """Latency at a fixed rate: from each request's due time, and the generator's lag."""

    latency: Latency
    lag: Latency
    failed: int
    achieved_rate: float
    others: float = math.nan  # CPU of processes outside the benchmark, % of one core


def summarise(shots: Sequence[Shot], skip_seconds: float) -> FixedRate:
    """Figures of the shots due after the first `skip_seconds` (connection set-up)."""
    if not shots:
        nan = Latency.of_seconds([])
        return FixedRate(nan, nan, 0, math.nan)
    first = shots[0].due
    kept = [s for s in shots if s.due - first >= skip_seconds] or list(shots)
    ok = [s for s in kept if s.status == 200]
    span = max(s.done for s in kept) - min(s.due for s in kept)
    return FixedRate(
        latency=Latency.of_seconds([s.latency for s in ok]),
        lag=Latency.of_seconds([s.lag for s in kept]),
        failed=len(kept) - len(ok),
        achieved_rate=len(ok) / span if span > 0 else math.nan,
    )


async def fixed(run: Run, router: Router, items: Sequence[Signed]) -> FixedRate:
    """`fixed_rate` req/s for `fixed_seconds` against a router; the first second is skipped."""
    o = run.options
    url = router.url + SOURCE_PATH
    others = Others(run.own_pids(router))
    shots = await fixed_rate(url, items, rate=o.fixed_rate, count=o.fixed_count)
    return replace(summarise(shots, skip_seconds=1.0), others=others.percent())
