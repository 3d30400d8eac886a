"""Benchmark of rtk-router: `python bench/run.py [--quick]` (see bench/README.md).

Starts the RTK emulator, routers (each with its embedded broker) and a bare aiohttp server on
free loopback ports, measures ingest throughput and latency, join-to-start latency, memory
and multi-process scaling, prints every figure against its target, and stops everything.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import machine
from bench.bodies import Signed, make_bodies, meeting_joins, sign_all, write_wrk_data
from bench.configs import RECORD_TITLE_PREFIX, write_keys
from bench.plan import JOINS_EACH, RECORD_EVERY, Plan, parse_args, plan_from
from bench.session import execute
from bench.wrk import wrk_binary
from router import clock


def say(line: str = "") -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_from(args)
    # The probes' Kafka clients report broker quirks at ERROR; the figures say what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    wrk_binary()  # fail early, with the install hint, when wrk is missing
    started = time.monotonic()
    say("rtk-router benchmark" + (" (quick)" if args.quick else ""))
    say("=" * 20)
    for line in machine.describe():
        say(line)
    say()
    workdir = Path(tempfile.mkdtemp(prefix="rtk-bench-"))
    try:
        keys = write_keys(workdir)
        sets = prepare(plan, keys.private.read_bytes(), workdir)
        # SIGTERM ends the run like Ctrl-C, so that the children are stopped either way.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        code = asyncio.run(execute(plan, workdir, keys, sets, say))
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        code = 130
    finally:
        if args.keep:
            say(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    say(f"total time {time.monotonic() - started:.0f} s")
    return code


def drain_title(n: int) -> str:
    """Meeting `n` of the drain phase: one in RECORD_EVERY is titled for a recording."""
    return f"{RECORD_TITLE_PREFIX} meeting {n}" if n % RECORD_EVERY == 0 else f"Weekly sync {n}"


def prepare(plan: Plan, private_pem: bytes, workdir: Path) -> dict[str, list[Signed]]:
    """Sign every body the run will send (before any child or event loop exists)."""
    now = clock.now()
    joins = plan.joins
    sizes = {
        "warm": 300,
        "ingest": plan.bodies,
        "fixed": plan.fixed_count,
        "joins": joins,
        "filler": max(0, plan.meetings - 300 - joins),
    }
    began = time.monotonic()
    sets: dict[str, list[Signed]] = {}
    for name, size in sizes.items():
        title = f"{RECORD_TITLE_PREFIX} meeting" if name == "joins" else "Weekly sync"
        sets[name] = sign_all(private_pem, make_bodies(size, title, now))
    if plan.needs_drain_log:
        drain = meeting_joins(plan.drain_meetings, JOINS_EACH, drain_title, now)
        sets["drain"] = sign_all(private_pem, drain)
        sizes["drain"] = len(drain)
    write_wrk_data(workdir / "ingest.tsv", sets["ingest"])
    total = sum(sizes.values())
    say(
        f"signed {total:,} distinct bodies in {time.monotonic() - began:.1f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in sizes.items())})"
    )
    return sets


if __name__ == "__main__":
    sys.exit(main())
