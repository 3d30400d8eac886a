"""One benchmark run from start to end: the emulator, then each phase on its own processes,
the report, and everything stopped whatever happens."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench import (
    backtest_phases,
    core_phase,
    drain_phases,
    hostile_phases,
    phases,
    policy_phases,
    profile,
    reconcile_phases,
    verify_phases,
)
from bench.configs import SOURCE_PATH, Emulator, Keys
from bench.machine import process_rss_mib
from bench.phases import Run, Say
from bench.plan import JOINS_EACH, RECORD_EVERY, Plan
from bench.procs import Processes, wait_http
from bench.report import Figures, summary
from bench.wrk import write_script
from router.broker import free_port


async def execute(
    plan: Plan, workdir: Path, keys: Keys, sets: dict[str, list[Any]], say: Say
) -> int:
    """Run every phase of `plan` and print the report; 0 when all ran (targets aside)."""
    procs = Processes(workdir)
    try:
        async with aiohttp.ClientSession() as http:
            port = free_port()
            args = ["emulate", "--port", str(port), "--key", str(keys.private)]
            emulator_child = procs.start(
                "emulator",
                [sys.executable, "-m", "router.cli", *args, "--idle-stop-seconds", "0"],
            )
            emulator = Emulator(f"http://127.0.0.1:{port}")
            await wait_http(http, emulator.base_url + "/_emulator", emulator_child)
            run = Run(procs, http, workdir, keys, emulator, plan, say)
            run.emulator_pid = emulator_child.pid
            script = write_script(
                workdir / "ingest.lua",
                data=workdir / "ingest.tsv",
                source_path=SOURCE_PATH,
                threads=plan.wrk_threads,
            )
            say(
                f"load: wrk -t{plan.wrk_threads} -c{plan.connections}, {plan.wrk_seconds:g} s, "
                f"over {len(sets['ingest']):,} bodies; bare server on {plan.bare_loop}"
            )
            figures = Figures(fixed_rate=plan.fixed_rate, join_rate=plan.join_rate)
            await _throughput(run, figures, script, sets)
            await _policy(run, figures, sets)
            await _drain(run, figures, sets)
            await _backtest(run, figures, sets)
            await _verify(run, figures, script, sets["warm"])
            await _reconcile(run, figures, sets["fixed"])
            await _hostile(run, figures, sets["fixed"])
            for line in summary(figures):
                say(line)
            return 0
    finally:
        await procs.stop_all()


async def _throughput(run: Run, f: Figures, script: Path, sets: dict[str, list[Any]]) -> None:
    plan, say = run.options, run.say
    if "bare" not in plan.skip:
        say("\n[1] bare aiohttp handler (reads the body, answers 200)")
        f.bare = await phases.bare(run, script)
        say(f"    {f.bare.wrk.describe()}")
        say(f"    server CPU per request: {f.bare.cpu_ms:.3f} ms")

    say(f"\n[2] router serve --workers 1 --role {plan.role}: verified, acknowledged webhooks")
    router = await run.start_router(workers=1, role=plan.role)
    await phases.warm_up(run, router, sets["warm"])
    recorder = None
    if plan.profile is not None:
        recorder = asyncio.create_task(
            profile.record(router.child.pid, plan.wrk_seconds, plan.profile)
        )
    f.one = await phases.ingest(run, router, script)
    _say_ingest(say, f.one)
    if recorder is not None:
        for line in await recorder:
            say(f"    {line}")
    if "fixed" not in plan.skip:
        say(
            f"\n[3] the same router at a fixed {plan.fixed_rate:,.0f} req/s "
            f"for {plan.fixed_seconds:g} s"
        )
        f.fixed = await phases.fixed(run, router, sets["fixed"])
        say(f"    latency from due time: {f.fixed.latency.describe()}")
        say(f"    generator lag:         {f.fixed.lag.describe()}")
        say(
            f"    achieved {f.fixed.achieved_rate:,.0f} req/s, failed {f.fixed.failed}; "
            f"other processes on the machine: {f.fixed.others:.0f}% of a core"
        )
    await run.procs.stop(router.child)

    if {"fixed", "split"}.isdisjoint(plan.skip):
        say("\n[3b] the same rate, receiver and worker in two processes (--role receiver|worker)")
        router, worker = await run.start_split()
        await phases.warm_up(run, router, sets["warm"])
        f.fixed_split = await phases.fixed(run, router, sets["fixed"])
        say(f"    latency from due time: {f.fixed_split.latency.describe()}")
        say(f"    generator lag:         {f.fixed_split.lag.describe()}")
        say(f"    other processes on the machine: {f.fixed_split.others:.0f}% of a core")
        lag, waited = await router.caught_up(plan.drain_timeout)
        say(
            f"    the worker finished {waited:.1f} s after the last request"
            + ("" if lag == 0 else f", {lag:,} left")
        )
        await run.procs.stop(worker)
        await run.procs.stop(router.child)

    if "workers" not in plan.skip:
        say(f"\n[4] router serve --workers 2 --role {plan.role} (SO_REUSEPORT), same load")
        router = await run.start_router(workers=2, role=plan.role)
        await phases.warm_up(run, router, sets["warm"])
        f.two = await phases.ingest(run, router, script)
        _say_ingest(say, f.two)
        if "fixed" not in plan.skip:
            # Not a target: how the fixed rate fares when a second process takes half of it.
            f.fixed_two = await phases.fixed(run, router, sets["fixed"])
            say(f"    at a fixed {plan.fixed_rate:,.0f} req/s: {f.fixed_two.latency.describe()}")
            say(f"    generator lag: {f.fixed_two.lag.describe()}")
            say(f"    other processes on the machine: {f.fixed_two.others:.0f}% of a core")
        await run.procs.stop(router.child)


async def _policy(run: Run, f: Figures, sets: dict[str, list[Any]]) -> None:
    plan, say = run.options, run.say
    if {"joins", "memory"} <= plan.skip:
        return
    say("\n[5] router serve --workers 1 with the policy: join-to-start and memory")
    router = await run.start_router(workers=1)
    idle = process_rss_mib(router.child.pid)
    await phases.warm_up(run, router, sets["warm"])
    held = len(sets["warm"])
    if "joins" not in plan.skip:
        f.joins = await policy_phases.join_to_start(run, router, sets["joins"])
        j = f.joins
        say(
            f"    {j.joins:,} joins at {plan.join_rate:g}/s; {j.started:,} recordings started; "
            f"{j.failed_sends} sends failed"
        )
        say(f"    join-to-start: {j.latency.describe()}")
        say(
            f"    CPU (% of one core): RTK emulator {j.emulator:.0f}%; "
            f"other processes on the machine {j.others:.0f}%"
        )
        held += j.joins
    if "memory" not in plan.skip:
        f.memory = await policy_phases.memory(run, router, sets["filler"], held=held, idle_mib=idle)
        m = f.memory
        state = "all processed" if m.caught_up else "NOT all processed in time"
        say(
            f"    RSS idle {m.idle_mib:.1f} MiB; with {m.meetings:,} meetings in state "
            f"({state}): {m.loaded_mib:.1f} MiB"
        )
    await run.procs.stop(router.child)


async def _drain(run: Run, f: Figures, sets: dict[str, list[Any]]) -> None:
    plan, say = run.options, run.say
    if "drain" in plan.skip:
        return
    items = sets["drain"]
    say(
        f"\n[6] worker drain: {len(items):,} joins of {plan.drain_meetings:,} meetings "
        f"({JOINS_EACH} each) on the log before router serve --role worker starts"
    )
    f.drain = d = await drain_phases.drain(run, items, sets["warm"][: drain_phases.STARTUP_EVENTS])
    say(
        f"    start-up CPU (a worker started on {d.startup_events} events, until it had "
        f"committed them): {d.startup_cpu:.2f} s"
    )
    say(f"    policy matching no meeting: {_drained(d.plain, d.plain_us)}")
    if d.recording is not None:
        say(f"    one meeting in {RECORD_EVERY} recorded: {_drained(d.recording, d.recording_us)}")
        say(
            f"    recordings the emulator started: {d.recording.starts or 0:,} "
            f"(of {d.recording.recorded:,} meetings titled to be)"
        )
    f.core = c = core_phase.core(items)
    say(
        f"    the core alone (Processor.step in this process, no Kafka, policy matching no "
        f"meeting): {c.best_us:.0f} µs CPU per event, the least of {core_phase.ROUNDS} rounds "
        f"(median {c.median_us:.0f})"
    )


async def _backtest(run: Run, f: Figures, sets: dict[str, list[Any]]) -> None:
    plan, say = run.options, run.say
    if "backtest" in plan.skip:
        return
    items = sets["drain"]
    say(
        f"\n[10] router backtest: the {len(items):,} joins of [6] decided by a worker with the "
        f"recording policy, then replayed with a candidate that starts at the third join"
    )
    f.backtest = b = await backtest_phases.backtest(run, items)
    w = b.drained
    say(
        f"    the worker that decided them: {w.processed:,} of {w.events:,} in "
        f"{w.wall_seconds:.1f} s; recordings the emulator started: {w.starts or 0:,}"
    )
    say(
        f"    router backtest --json: {b.events:,} events, {b.decisions:,} recorded decisions "
        f"compared, {b.changed:,} changed, {b.gained} gained, {b.lost} lost"
    )
    say(
        f"    {b.wall_seconds:.2f} s from the command's start to its exit (imports, reading "
        f"both topics and the replay): {b.rate:,.0f} events/s"
    )
    say(
        f"    its CPU (all its processes): {b.cpu_seconds:.2f} s: {b.cpu_rate:,.0f} events per "
        "CPU second (its rate on one core of its own)"
    )


def _drained(d: drain_phases.Drained, us: float) -> str:
    if not d.complete:
        return f"only {d.processed:,} of {d.events:,} committed in {d.wall_seconds:.0f} s"
    return (
        f"{us:.0f} µs CPU per event ({d.cpu_seconds:.2f} s in all); first commit "
        f"{d.first_commit_seconds:.1f} s after its start, all {d.events:,} after "
        f"{d.wall_seconds:.1f} s; {d.rate:,.0f} events/s in between"
    )


async def _verify(run: Run, f: Figures, script: Path, warm: list[Any]) -> None:
    plan, say = run.options, run.say
    if "verify" in plan.skip:
        return
    say(
        "\n[7] router serve --role receiver vs a minimal verifying handler "
        "(verify, json.loads, one send_and_wait)"
    )
    f.verify = v = await verify_phases.verify(run, script, warm)
    for name, served in (("verifying handler", v.verifying), ("receiver alone", v.receiver)):
        say(f"    {name}: {served.wrk.describe()}")
        say(
            f"    {' ' * len(name)}  CPU per request {served.cpu_ms:.3f} ms, its broker "
            f"{served.broker_ms:.3f} ms; on its log {served.appended:,} "
            f"(the warm-up's {len(warm)} included)"
        )
    say(
        f"    receiver / verifying: {v.ratio:.2f} x; CPU per request, verifying / receiver: "
        f"{v.cpu_ratio:.2f} x"
    )


async def _reconcile(run: Run, f: Figures, fixed: list[Any]) -> None:
    plan, say = run.options, run.say
    if "reconcile" in plan.skip:
        return
    live = reconcile_phases.LIVE_MEETINGS
    say(
        f"\n[8] webhook latency at a fixed {plan.fixed_rate:,.0f} req/s with {live:,} live "
        f"meetings: reconciliation off, at its defaults, and checking every meeting each "
        f"{reconcile_phases.INTERVAL_SECONDS:g} s"
    )
    f.reconcile = await reconcile_phases.reconciling(run, fixed)
    for r in f.reconcile.runs:
        say(f"    {r.name}: latency from due time {r.latency.latency.describe()}")
        say(f"        generator lag {r.latency.lag.describe()}; failed {r.latency.failed}")
        if r.outcomes:
            checks = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r.outcomes.items()))
            say(f"        reconciliation calls {r.checks_per_second:.1f}/s; so far: {checks}")


async def _hostile(run: Run, f: Figures, items: list[Any]) -> None:
    if "hostile" in run.options.skip:
        return
    h = hostile_phases
    run.say(
        f"\n[9] router serve --role receiver at {h.RATE:g} webhooks/s for {h.SECONDS:g} s: "
        f"calm, then with {h.IDLE:,} idle connections and {h.SLOW} unfinished 1 MiB bodies open"
    )
    f.hostile = await h.hostile(run, items)
    for line in h.describe(f.hostile):
        run.say(f"    {line}")


def _say_ingest(say: Say, ingest: phases.Ingest) -> None:
    say(f"    {ingest.wrk.describe()}")
    say(f"    CPU (% of one core): {ingest.describe_cpu()}")
    say(f"    appended to the log: {ingest.appended:,} (wrk counted {ingest.wrk.requests:,})")
    if ingest.backlog is not None:
        if ingest.drain_seconds is None:
            say(f"    worker backlog when wrk stopped: {ingest.backlog:,}; not finished in time")
        else:
            say(
                f"    worker backlog when wrk stopped: {ingest.backlog:,}; "
                f"finished {ingest.drain_seconds:.1f} s later"
            )
    say(f"    router CPU per webhook, receiver and worker: {ingest.cpu_ms:.3f} ms")
