"""What one run does: durations, rates and the shape of the load, from the command line."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path

PHASES = (
    "bare",
    "fixed",
    "split",
    "workers",
    "joins",
    "memory",
    "drain",
    "verify",
    "reconcile",
    "hostile",
    "backtest",
)
JOINS_EACH = 10  # joins of distinct participants per meeting in the drain phase
RECORD_EVERY = 10  # one meeting in this many is recorded in the drain phase's second run


@dataclass(frozen=True)
class Plan:
    """Every knob of a run; `run.py` fills it from flags (with `--quick` defaults)."""

    wrk_seconds: float
    wrk_threads: int
    connections: int
    bodies: int  # distinct signed bodies the wrk script cycles through
    fixed_rate: float
    fixed_seconds: float
    join_rate: float
    join_seconds: float
    meetings: int
    drain_timeout: float
    loop: str  # event loop of the bare server: auto (the router's), asyncio or uvloop
    role: str = "all"  # `router serve --role` of the throughput and fixed-rate phases
    drain_meetings: int = 5_000  # meetings of the worker-drain phase, JOINS_EACH joins each
    profile: Path | None = None
    skip: frozenset[str] = frozenset()

    @property
    def joins(self) -> int:
        """Joins sent in the join-to-start phase."""
        return round(self.join_rate * self.join_seconds)

    @property
    def fixed_count(self) -> int:
        """Requests sent in the fixed-rate phase."""
        return round(self.fixed_rate * self.fixed_seconds)

    @property
    def drain_events(self) -> int:
        """Webhooks on the log before the worker of the drain phase starts."""
        return self.drain_meetings * JOINS_EACH

    @property
    def needs_drain_log(self) -> bool:
        """Whether a phase runs on the drain phase's webhooks (the drain, the backtest)."""
        return not {"drain", "backtest"} <= self.skip

    @property
    def bare_loop(self) -> str:
        """The bare server's event loop: the router's own (uvloop when installed) unless set."""
        if self.loop != "auto":
            return self.loop
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `bench/run.py`."""
    p = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmark of rtk-router; see bench/README.md for what each figure means.",
    )
    p.add_argument("--quick", action="store_true", help="shorter phases: about 1-2 minutes in all")
    p.add_argument("--wrk-seconds", type=float, help="each wrk run (default 20, quick 8)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument(
        "--bodies", type=int, help="distinct signed bodies for wrk (default 40000, quick 12000)"
    )
    p.add_argument("--fixed-rate", type=float, default=1000.0, help="req/s of the latency run")
    p.add_argument("--fixed-seconds", type=float, help="the latency run (default 30, quick 10)")
    p.add_argument("--join-rate", type=float, default=200.0, help="joins/s (default 200)")
    p.add_argument(
        "--join-seconds", type=float, help="the join-to-start run (default 30, quick 10)"
    )
    p.add_argument("--meetings", type=int, default=10_000, help="meetings held for the RSS figure")
    p.add_argument("--drain-timeout", type=float, default=180.0, help="wait for a worker backlog")
    p.add_argument(
        "--drain-meetings",
        type=int,
        help=f"meetings of the worker-drain and backtest phases, {JOINS_EACH} joins each "
        "(default 5000, quick 2000)",
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop of the bare server (auto: the router's)",
    )
    p.add_argument(
        "--role",
        choices=["all", "receiver"],
        default="all",
        help="router role of the throughput and fixed-rate phases (default all)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also record the router under wrk load with py-spy into DIR",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=PHASES,
        help="leave a phase out (repeatable)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, configs)"
    )
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    """The plan for parsed arguments: `--quick` changes only the defaults."""
    quick = args.quick
    return Plan(
        wrk_seconds=args.wrk_seconds or (8 if quick else 20),
        wrk_threads=args.wrk_threads,
        connections=args.connections,
        bodies=args.bodies or (12_000 if quick else 40_000),
        fixed_rate=args.fixed_rate,
        fixed_seconds=args.fixed_seconds or (10 if quick else 30),
        join_rate=args.join_rate,
        join_seconds=args.join_seconds or (10 if quick else 30),
        meetings=args.meetings,
        drain_timeout=args.drain_timeout,
        loop=args.loop,
        role=args.role,
        drain_meetings=args.drain_meetings or (2_000 if quick else 5_000),
        profile=args.profile,
        skip=frozenset(args.skip),
    )
