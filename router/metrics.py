"""Prometheus metrics, held per application in their own registry (no process-global state),
with prometheus-client's default collectors of the process (CPU, resident memory, open file
descriptors: `process_*`), the collector (`python_gc_*`) and the interpreter (`python_info`).
Each serving process exports its own; `router_process_info` says which process answered."""

from __future__ import annotations

import copy
import os
from typing import Any, cast

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# The metrics about one RTK app, which gain an `app` label in the `apps` form of the
# configuration (the single-app form keeps the label sets it always had).
APP_METRICS = ("webhooks", "rtk_api_calls", "decisions", "reconcile")


class _OfApp:
    """A labelled metric as one app sees it: the `app` label is filled in, the others given."""

    def __init__(self, metric: Any, app: str) -> None:
        self._metric = metric
        self._app = app

    def labels(self, *values: str, **named: str) -> Any:
        if named:
            return self._metric.labels(**named, app=self._app)
        return self._metric.labels(*values, self._app)


class Metrics:
    """Every metric the router exports; one instance per running app, passed to what counts.

    With `apps`, the metrics of `APP_METRICS` and `router_policy_info` have an `app` label
    (last); `for_app` gives the view of one app that fills it in.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, apps: bool = False) -> None:
        self.registry = registry or CollectorRegistry()
        self.apps = apps
        more = ["app"] if apps else []
        self._policies: dict[str, tuple[str, str]] = {}
        self._views: dict[str, Metrics] = {}
        self._children: dict[tuple[Counter, tuple[str, ...]], Counter] = {}
        r = self.registry
        if registry is None:
            # (the default collectors hold no state: one instance serves every registry)
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                r.register(collector)
        self.process_info = Gauge(
            "router_process_info",
            "Always 1, labelled with the process that answered the scrape: its pid and its "
            "worker number under --workers N (0 otherwise).",
            ["pid", "worker"],
            registry=r,
        )
        self.webhooks = Counter(
            "router_webhooks_total",
            "Webhook deliveries by source, event and answer.",
            ["source", "event", "status", *more],
            registry=r,
        )
        self.signature_failures = Counter(
            "router_signature_failures_total",
            "Deliveries refused for their signature, by reason.",
            ["source", "reason"],
            registry=r,
        )
        self.publish_seconds = Histogram(
            "router_publish_seconds",
            "Time from handing a webhook to the producer to the broker's acknowledgement.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.rtk_api_calls = Counter(
            "router_rtk_api_calls_total",
            "Calls to the RealtimeKit REST API by call and outcome.",
            ["call", "outcome", *more],
            registry=r,
        )
        self.decisions = Counter(
            "router_decisions_total", "Policy decisions by outcome.", ["outcome", *more], registry=r
        )
        self.recording_updates_dropped = Counter(
            "router_recording_updates_dropped_total",
            "Recording status updates not published, by reason.",
            ["reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "router_consumer_lag",
            "Messages on the webhooks topic not yet processed, by partition.",
            ["partition"],
            registry=r,
        )
        self.events = Counter(
            "router_events_total",
            "Events handled by the worker, by event and result.",
            ["event", "result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "router_dead_letters_total",
            "Events sent to dead-letter, by stage.",
            ["stage"],
            registry=r,
        )
        self.state_records_invalid = Counter(
            "router_state_records_invalid_total",
            "Records on the state topic that could not be decoded and were skipped.",
            registry=r,
        )
        self.producer_idempotent = Gauge(
            "router_producer_idempotent",
            "1 while the producer is idempotent, 0 without idempotence (by setting or refusal).",
            registry=r,
        )
        self.idempotence_refused = Gauge(
            "router_producer_idempotence_refused",
            "1 when the cluster refused idempotent producers (InitProducerId), 0 otherwise.",
            registry=r,
        )
        self.producers_replaced = Counter(
            "router_producers_replaced_total",
            "Producers replaced by a fresh one after an error that wedges them, by error.",
            ["error"],
            registry=r,
        )
        self.reconcile = Counter(
            "router_reconcile_total",
            "Reconciliation checks against RTK, by check (session, recording) and outcome.",
            ["check", "outcome", *more],
            registry=r,
        )
        self.http_connections = Gauge(
            "router_http_connections", "Open HTTP connections to the server.", registry=r
        )
        self.http_bodies_reading = Gauge(
            "router_http_bodies_reading",
            "Request bodies being read under one of server.max_body_reads.",
            registry=r,
        )
        self.http_connections_closed = Counter(
            "router_http_connections_closed_total",
            "Connections the server closed to keep within its limits, by reason.",
            ["reason"],
            registry=r,
        )
        self.policy_info = Gauge(
            "router_policy_info",
            "The active policy: always 1, labelled with its version and mode.",
            ["policy_version", "mode", *more],
            registry=r,
        )

    def inc(self, counter: Counter, *values: str) -> None:
        """Count one on `counter` with these label values (in its labels' order). The labelled
        child is remembered: looking it up costs more than the increment, on every event."""
        key = (counter, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*values)
        child.inc()

    def set_process(self, worker: int) -> None:
        """Label `router_process_info` with this process."""
        self.process_info.clear()
        self.process_info.labels(pid=str(os.getpid()), worker=str(worker)).set(1)

    def for_app(self, app: str | None) -> Metrics:
        """The metrics as counted for one app: these very ones in the single-app form, else a
        view whose app metrics carry `app`."""
        if not self.apps or app is None:
            return self
        view = self._views.get(app)
        if view is None:
            # (the registry, metrics and cached children are shared; one view per app, made
            # once, so that the children cached by `inc` stay one per label set)
            view = self._views[app] = copy.copy(self)
            for name in APP_METRICS:
                setattr(view, name, cast(Counter, _OfApp(getattr(self, name), app)))
        return view

    def set_policy(self, version: str, mode: str, app: str | None = None) -> None:
        """Show only the active policy version and mode (of each app, in the apps form)."""
        if not self.apps or app is None:
            self.policy_info.clear()
            self.policy_info.labels(policy_version=version, mode=mode).set(1)
            return
        before = self._policies.get(app)
        if before is not None:
            self.policy_info.remove(*before, app)
        self._policies[app] = (version, mode)
        self.policy_info.labels(policy_version=version, mode=mode, app=app).set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
