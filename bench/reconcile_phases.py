"""Webhook latency while reconciliation checks many live meetings: the fixed-rate run against
a router holding `LIVE_MEETINGS` live meetings with reconciliation off, then against fresh ones
holding as many with reconciliation at its defaults (120 calls a minute), and paced fast enough
to check every meeting each interval."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.bodies import Signed
from bench.phases import FixedRate, Router, Run, fixed

LIVE_MEETINGS = 2_000
INTERVAL_SECONDS = 20.0
# Every meeting once an interval: 2,000 / 20 s = 100 checks a second, 6,000 a minute.
RECONCILE = {"interval_seconds": INTERVAL_SECONDS, "max_calls_per_minute": 6_000}
_COUNTER = re.compile(r'^router_reconcile_total\{check="(\w+)",outcome="(\w+)"\} (\S+)$', re.M)


# (name, reconcile section, how long reconciliation runs before the measurement)
SETTINGS: tuple[tuple[str, dict[str, Any], float], ...] = (
    ("off", {"interval_seconds": 0}, 0.0),
    # At the defaults the budget, not the interval, sets the pace from the first seconds on.
    ("defaults", {}, 5.0),
    # A whole interval first: every meeting has had its first round, the pace is even.
    ("every meeting", RECONCILE, INTERVAL_SECONDS),
)


@dataclass(frozen=True)
class Reconciled:
    """The fixed-rate latency under one setting, and reconciliation's pace meanwhile."""

    name: str
    latency: FixedRate
    checks_per_second: float  # reconciliation's RTK calls during the run
    outcomes: dict[str, float]  # `check/outcome` -> count at the end of the run


@dataclass(frozen=True)
class Reconciling:
    """One run per setting of `SETTINGS`, in its order."""

    runs: tuple[Reconciled, ...]


async def reconciling(run: Run, items: Sequence[Signed]) -> Reconciling:
    """Every run, each router on its own broker with its own live meetings."""
    return Reconciling(tuple([await _measured(run, items, *setting) for setting in SETTINGS]))


async def _measured(
    run: Run, items: Sequence[Signed], name: str, reconcile: dict[str, Any], settle: float
) -> Reconciled:
    router = await run.start_router(sections={"reconcile": reconcile})
    try:
        await _go_live(run, router)
        await asyncio.sleep(settle)
        before, began = await _checks(run, router), time.monotonic()
        latency = await fixed(run, router, items)
        after = await _checks(run, router)
        pace = (sum(after.values()) - sum(before.values())) / (time.monotonic() - began)
        return Reconciled(name, latency, pace, after)
    finally:
        await run.procs.stop(router.child)
        await _emulator(run, "POST", "/reset")


async def _go_live(run: Run, router: Router) -> None:
    """`LIVE_MEETINGS` meetings of one peer each, live in the emulator and, by its webhooks
    (`meeting.started`, a join), in the router's state."""
    await _emulator(run, "PUT", "/webhooks/url", {"url": router.url + "/webhooks/realtimekit"})
    scripts = [
        {"meeting_id": str(uuid.uuid4()), "steps": [{"action": "join", "participant": "u"}]}
        for _ in range(LIVE_MEETINGS)
    ]
    for start in range(0, len(scripts), 100):
        await asyncio.gather(
            *(_emulator(run, "POST", "/meetings/play", s) for s in scripts[start : start + 100])
        )
    deadline = time.monotonic() + run.options.drain_timeout
    while len(await _emulator(run, "GET", "/webhooks")) < 2 * LIVE_MEETINGS:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    await router.caught_up(run.options.drain_timeout)


async def _emulator(run: Run, method: str, path: str, body: Any = None) -> Any:
    url = run.emulator.base_url + "/_emulator" + path
    async with run.http.request(method, url, json=body) as answer:
        return await answer.json()


async def _checks(run: Run, router: Router) -> dict[str, float]:
    async with run.http.get(router.url + "/metrics") as answer:
        text = await answer.text()
    return {f"{c}/{o}": float(n) for c, o, n in _COUNTER.findall(text)}
