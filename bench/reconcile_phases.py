"""Webhook latency while reconciliation checks many live meetings: the fixed-rate run against
a router holding `LIVE_MEETINGS` live meetings with reconciliation off, then against a fresh one
holding as many with reconciliation on, paced fast enough to check every one each interval."""

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


@dataclass(frozen=True)
class Reconciling:
    """The fixed-rate latency without and with reconciliation, and its pace meanwhile."""

    off: FixedRate
    on: FixedRate
    checks_per_second: float  # reconciliation's RTK calls during the run with it on
    outcomes: dict[str, float]  # `check/outcome` -> count at the end of that run


async def reconciling(run: Run, items: Sequence[Signed]) -> Reconciling:
    """Both runs, each router on its own broker with its own live meetings."""
    off = await _measured(run, items, {"interval_seconds": 0})
    on = await _measured(run, items, RECONCILE)
    return Reconciling(off[0], on[0], on[1], on[2])


async def _measured(
    run: Run, items: Sequence[Signed], reconcile: dict[str, Any]
) -> tuple[FixedRate, float, dict[str, float]]:
    router = await run.start_router(sections={"reconcile": reconcile})
    try:
        await _go_live(run, router)
        if reconcile["interval_seconds"]:
            # A whole interval first: every meeting has had its first round, the pace is even.
            await asyncio.sleep(INTERVAL_SECONDS)
        before, began = await _checks(run, router), time.monotonic()
        latency = await fixed(run, router, items)
        after = await _checks(run, router)
        pace = (sum(after.values()) - sum(before.values())) / (time.monotonic() - began)
        return latency, pace, after
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
