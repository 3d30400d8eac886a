"""`router backtest` on a full log: the drain phase's webhooks processed by a worker with the
recording policy (so that the decisions topic holds what it decided), then the command replays
them with a candidate policy, as an operator runs it, and its wall time is read.

The candidate starts the same meetings' recordings at the third participant instead of the
first, so that every recorded meeting's first three decisions change (and none is gained or
lost): the replay compares every event and prints changes, the work an operator's run does.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.bodies import Signed
from bench.configs import write_router_config
from bench.drain_phases import Drained, worked_log
from bench.phases import Run

_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Backtested:
    """One `router backtest --json` run over a log a worker had processed."""

    drained: Drained  # the worker that wrote the decisions
    events: int  # the command's `summary.events`
    decisions: int  # recorded decisions it compared
    changed: int
    gained: int
    lost: int
    wall_seconds: float  # the command, from its start (imports included) to its exit
    cpu_seconds: float  # user and system time of the command and its processes

    @property
    def rate(self) -> float:
        """Events replayed per second of the command's wall time."""
        return self.events / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def cpu_rate(self) -> float:
        """Events replayed per second of CPU (all its processes): its rate on one core."""
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else math.nan


def candidate_config(config: dict[str, Any]) -> dict[str, Any]:
    """The worker's config with its one rule made to wait for a third participant."""
    policy = config["policy"]
    rule = policy["rules"][0]
    when = {**rule["when"], "session.participants": {"gte": 3}}
    return {**config, "policy": {**policy, "rules": [{**rule, "when": when}]}}


def summary_of(output: str) -> dict[str, Any]:
    """The `summary` of the JSON document among the command's output lines."""
    for line in output.splitlines():
        if line.startswith("{"):
            found: dict[str, Any] = json.loads(line)["summary"]
            return found
    raise RuntimeError(f"router backtest printed no JSON:\n{output[-2000:]}")


async def backtest(run: Run, items: Sequence[Signed]) -> Backtested:
    """A worker with the recording policy over `items`, then the backtest of the candidate."""
    async with worked_log(run, "backtest-worker", items, record=True) as worked:
        if not worked.drained.complete:
            raise RuntimeError("the worker did not process the log it was to write decisions of")
        path = write_router_config(
            run.workdir / "backtest-candidate.json", candidate_config(worked.config)
        )
        args = [sys.executable, "-m", "router.cli", "backtest", "--config", str(path), "--json"]
        cpu_before = _children_cpu()
        started = time.monotonic()
        child = run.procs.start("backtest", args)
        deadline = started + run.options.drain_timeout
        while child.running and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
        wall = time.monotonic() - started
        cpu = _children_cpu() - cpu_before  # (reaped by `running`: only it ended meanwhile)
        if child.running:
            await run.procs.stop(child)
            raise RuntimeError(f"router backtest did not finish in {wall:.0f} s")
        if child.process.returncode != 0:
            raise RuntimeError(
                f"router backtest exited {child.process.returncode}:\n{child.log_tail()}"
            )
        found = summary_of(child.log.read_text(errors="replace"))
    return Backtested(
        drained=worked.drained,
        events=found["events"],
        decisions=sum(found["recorded"].values()),
        changed=found["changed"],
        gained=len(found["gained"]),
        lost=len(found["lost"]),
        wall_seconds=wall,
        cpu_seconds=cpu,
    )


def _children_cpu() -> float:
    """User and system CPU seconds of the benchmark's children that have been reaped."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
