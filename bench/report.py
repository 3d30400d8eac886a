"""The summary printed at the end of a run: every figure with its target and PASS or MISS."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from bench.backtest_phases import Backtested
from bench.core_phase import Core
from bench.drain_phases import Drain
from bench.hostile_phases import Hostile
from bench.phases import Bare, FixedRate, Ingest
from bench.plan import RECORD_EVERY
from bench.policy_phases import JoinToStart, Memory
from bench.reconcile_phases import Reconciling
from bench.stats import Target, ratio
from bench.verify_phases import Served, Verify

NAN = math.nan


@dataclass
class Figures:
    """What the phases measured; a phase that did not run leaves its figure at None."""

    bare: Bare | None = None
    one: Ingest | None = None
    two: Ingest | None = None
    fixed: FixedRate | None = None
    fixed_two: FixedRate | None = None  # the fixed rate against --workers 2 (no target)
    fixed_split: FixedRate | None = None  # against receiver and worker apart (no target)
    joins: JoinToStart | None = None
    memory: Memory | None = None
    drain: Drain | None = None
    core: Core | None = None  # the worker's core alone (no target: where the drain's time goes)
    verify: Verify | None = None
    reconcile: Reconciling | None = None  # latency without and with reconciliation (no target)
    hostile: Hostile | None = None
    backtest: Backtested | None = None
    fixed_rate: float = 1000.0
    join_rate: float = 200.0


def targets(f: Figures) -> list[Target]:
    """The eight targets of the benchmark, in report order."""
    bare_rps = f.bare.wrk.rps if f.bare else NAN
    one_rps = f.one.wrk.rps if f.one else NAN
    two_rps = f.two.wrk.rps if f.two else NAN
    rss_mb = f.memory.loaded_mib * 1024 * 1024 / 1e6 if f.memory else NAN
    held = f"router RSS with {f.memory.meetings:,} meetings" if f.memory else "router RSS"
    return [
        Target("ingest throughput, router / bare", ratio(one_rps, bare_rps), 0.2, "x", True),
        Target(
            f"ingest p99 at a fixed {f.fixed_rate:,.0f} req/s, --workers 1",
            f.fixed.latency.p99 if f.fixed else NAN,
            20,
            "ms",
        ),
        Target(
            f"join-to-start p99 at {f.join_rate:g} joins/s",
            f.joins.latency.p99 if f.joins else NAN,
            50,
            "ms",
        ),
        Target(held, rss_mb, 200, "MB"),
        Target("throughput, --workers 2 / --workers 1", ratio(two_rps, one_rps), 1.6, "x", True),
        Target(
            "worker drain CPU per event, no recording",
            f.drain.plain_us if f.drain else NAN,
            160,
            "µs",
        ),
        Target(
            "throughput, receiver alone / verifying handler",
            f.verify.ratio if f.verify else NAN,
            0.8,
            "x",
            True,
        ),
        Target(
            "router backtest replay",
            f.backtest.rate if f.backtest else NAN,
            5000,
            "events/s",
            True,
        ),
    ]


def _row(name: str, text: str) -> str:
    return f"  {name:<32} {text}"


def summary(f: Figures) -> list[str]:
    """The closing block of the report: the figures, then the targets."""
    lines = ["", "Summary", "-------"]
    for name, run in (("router --workers 1", f.one), ("router --workers 2", f.two)):
        if run is not None:
            lines.append(
                _row(
                    name,
                    f"{run.wrk.rps:>8,.0f} req/s   p50 {run.wrk.p50:.2f} ms, "
                    f"p99 {run.wrk.p99:.2f} ms   CPU {run.cpu_ms:.3f} ms/webhook",
                )
            )
    if f.bare:
        lines.append(
            _row(
                "bare aiohttp",
                f"{f.bare.wrk.rps:>8,.0f} req/s   p50 {f.bare.wrk.p50:.2f} ms, "
                f"p99 {f.bare.wrk.p99:.2f} ms   CPU {f.bare.cpu_ms:.3f} ms/request",
            )
        )
    if f.bare and f.one:
        lines.append(
            _row(
                "CPU per request, bare / router",
                f"{ratio(f.bare.cpu_ms, f.one.cpu_ms):.2f} x (the throughput ratio if every "
                "process had a core of its own)",
            )
        )
    if f.fixed:
        lines.append(
            _row(
                f"at {f.fixed_rate:,.0f} req/s, --workers 1",
                f"p50 {f.fixed.latency.p50:.2f} ms, "
                f"p99 {f.fixed.latency.p99:.2f} ms, achieved {f.fixed.achieved_rate:,.0f} req/s",
            )
        )
    if f.fixed_split:
        lines.append(
            _row(
                f"at {f.fixed_rate:,.0f} req/s, roles apart",
                f"p50 {f.fixed_split.latency.p50:.2f} ms, p99 {f.fixed_split.latency.p99:.2f} ms, "
                f"achieved {f.fixed_split.achieved_rate:,.0f} req/s",
            )
        )
    if f.fixed_two:
        lines.append(
            _row(
                f"at {f.fixed_rate:,.0f} req/s, --workers 2",
                f"p50 {f.fixed_two.latency.p50:.2f} ms, p99 {f.fixed_two.latency.p99:.2f} ms, "
                f"achieved {f.fixed_two.achieved_rate:,.0f} req/s",
            )
        )
    if f.joins:
        lines.append(
            _row(
                "join-to-start",
                f"p50 {f.joins.latency.p50:.2f} ms, "
                f"p99 {f.joins.latency.p99:.2f} ms ({f.joins.started:,} of {f.joins.joins:,})",
            )
        )
    if f.memory:
        lines.append(
            _row(
                "RSS idle / loaded", f"{f.memory.idle_mib:.1f} MiB / {f.memory.loaded_mib:.1f} MiB"
            )
        )
    if f.drain:
        lines += _drain_rows(f.drain)
    if f.core:
        lines.append(
            _row("worker core alone, no Kafka", f"{f.core.best_us:>6.0f} µs/event (least round)")
        )
    if f.verify:
        lines += [
            _row("verifying handler", _served(f.verify.verifying)),
            _row("router --role receiver", _served(f.verify.receiver)),
            _row(
                "CPU/request, verifying/receiver",
                f"{f.verify.cpu_ratio:.2f} x (the throughput ratio if each had a core of its own)",
            ),
        ]
    if f.hostile:
        held = f.hostile.held
        lines.append(
            _row(
                "webhooks, connections held",
                f"p50 {held.latency.p50:.2f} ms, p99 {held.latency.p99:.2f} ms, "
                f"failed {held.failed} (calm p99 {f.hostile.calm.latency.p99:.2f} ms)",
            )
        )
    if f.backtest:
        b = f.backtest
        lines.append(
            _row(
                "router backtest",
                f"{b.rate:>8,.0f} events/s   {b.events:,} events in {b.wall_seconds:.2f} s "
                f"({b.cpu_rate:,.0f} per CPU second), {b.changed:,} decisions changed",
            )
        )
    lines += ceilings(f)
    lines += ["", "Targets", "-------"]
    lines += [t.line() for t in targets(f)]
    return lines


def ceilings(f: Figures, cores: int | None = None) -> list[str]:
    """What two ratio targets could be at best on this machine, from this run's own figures.

    - router / bare: one process must at least verify and log each webhook (the verifying
      handler's CPU per request) and decide it (the worker's core per event, no Kafka); with
      a core of its own it could not go faster than one over their sum.
    - `--workers 2` / `--workers 1`: the one-process run used the shares of the machine its
      summary prints (router, broker, wrk); two processes cannot take more than the whole
      machine, so at the same CPU per webhook the ratio is at most 100% x cores over their
      sum.
    """
    lines: list[str] = []
    if f.verify and f.core and f.bare:
        least_ms = f.verify.verifying.cpu_ms + f.core.best_us / 1000
        best_rps = 1000 / least_ms
        lines.append(
            _row(
                "ceiling of router / bare",
                f"{ratio(best_rps, f.bare.wrk.rps):.2f} x: {best_rps:,.0f} req/s at "
                f"{least_ms:.3f} ms/webhook (verifying handler + worker core), one core",
            )
        )
    if f.one and f.one.cpu:
        used = sum(f.one.cpu.get(name, 0.0) for name in ("router", "broker", "wrk"))
        cores = cores or _cores()
        if used > 0:
            lines.append(
                _row(
                    "ceiling of workers 2 / 1",
                    f"{100 * cores / used:.2f} x: --workers 1 took {used:.0f}% of "
                    f"{100 * cores:.0f}% (router, broker and wrk)",
                )
            )
    return ["", "Ceilings on this machine", "------------------------", *lines] if lines else []


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _served(s: Served) -> str:
    return (
        f"{s.wrk.rps:>8,.0f} req/s   p50 {s.wrk.p50:.2f} ms, p99 {s.wrk.p99:.2f} ms   "
        f"CPU {s.cpu_ms:.3f} ms/request (broker {s.broker_ms:.3f})"
    )


def _drain_rows(d: Drain) -> list[str]:
    rows = [
        _row(
            "worker drain, no recording",
            f"{d.plain_us:>6.0f} µs/event   {d.plain.rate:,.0f} events/s, "
            f"{d.plain.processed:,} of {d.plain.events:,} in {d.plain.wall_seconds:.1f} s",
        )
    ]
    if d.recording:
        r = d.recording
        rows.append(
            _row(
                f"worker drain, 1 in {RECORD_EVERY} recorded",
                f"{d.recording_us:>6.0f} µs/event   {r.rate:,.0f} events/s, "
                f"{r.starts or 0:,} of {r.recorded:,} recordings started",
            )
        )
    return rows
