"""Reconciliation in the `apps` form: each meeting is checked with its own app's client, and
one app's refused calls (401) stop the checks of that app only."""

from __future__ import annotations

import asyncio

from router.config import KafkaConfig, ReconcileConfig
from router.core.meeting_state import MeetingState
from router.metrics import Metrics
from router.worker.reconcile import Reconciler
from router.worker.states import MeetingStates
from tests.fake_rtk import FakeRtk


async def test_each_meeting_is_checked_with_its_apps_client_and_a_refusal_stays_there() -> None:
    metrics = Metrics(apps=True)
    states = MeetingStates(KafkaConfig(), "unused:9092", metrics)
    states.put("m-a", 0, MeetingState("m-a", session_id="s-a", peers={"p": None}, app="alpha"))
    states.put("m-b", 0, MeetingState("m-b", session_id="s-b", peers={"p": None}, app="beta"))
    alpha, beta = FakeRtk(), FakeRtk()
    alpha.fail("active_session", 401, count=1_000)
    beta.go_live("m-b", "s-b", 3)  # RTK counts 3 where the router holds 1
    clients = {"alpha": alpha, "beta": beta}
    config = ReconcileConfig(interval_seconds=0.05, max_calls_per_minute=6000)
    reconciler = Reconciler(config, None, states, metrics, owned=lambda: {0}, api_of=clients.get)
    reconciler.start()
    try:
        async with asyncio.timeout(10):
            while beta.calls.count("active_session") < 3:  # beta's rounds go on
                await asyncio.sleep(0.01)
        found = reconciler.take(busy=(), owned={0})
    finally:
        await reconciler.stop()

    assert alpha.calls == ["active_session"]  # refused once, then no longer asked
    assert {entry.logged.meeting_id for entry in found} == {"m-b"}
    assert await reconciler.ready() is None  # the router still serves beta (and alpha's hooks)

    def count(app: str, outcome: str) -> float:
        labels = {"app": app, "check": "session", "outcome": outcome}
        return metrics.registry.get_sample_value("router_reconcile_total", labels) or 0.0

    assert count("alpha", "unauthorized") == 1
    assert count("beta", "unauthorized") == 0


def test_an_apps_metrics_view_is_made_once() -> None:
    metrics = Metrics(apps=True)
    assert metrics.for_app("alpha") is metrics.for_app("alpha")
    assert metrics.for_app("alpha") is not metrics.for_app("beta")
    assert metrics.for_app(None) is metrics
    plain = Metrics()  # (the single-app form: no app label, no view)
    assert plain.for_app("alpha") is plain
    for _ in range(3):
        view = metrics.for_app("alpha")
        view.inc(view.decisions, "started")
    labels = {"app": "alpha", "outcome": "started"}
    assert metrics.registry.get_sample_value("router_decisions_total", labels) == 3
    assert len(metrics._children) == 1  # (one cached child, however often the view is asked)
