"""Running the app as processes: listen, reload the policy on SIGHUP, and on SIGTERM/SIGINT
stop accepting, drain, stop the worker, flush the producer and stop the embedded broker.

With `--workers N` a supervisor starts the embedded broker once (when configured) and N
processes that share the port through SO_REUSEPORT, each with a receiver and a worker in the
one consumer group, so Kafka spreads the meetings over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import resource
import signal
import sys
from collections.abc import Coroutine, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import start_http_server

from router import logs
from router.app import CONNECTIONS, RUNTIME, Role, Runtime, create_app
from router.broker import EmbeddedBroker, die_with_parent
from router.config import Settings, app_policies, load_config
from router.core.policy import PolicyConfig
from router.errors import ConfigError
from router.listener import ListenerRunner

# The collector's thresholds, from `gc.callbacks` on a worker draining 50,000 joins: at
# Python's (700, 10, 10) it ran about 3,000 young and 25 full collections, 0.6-1.0 s of
# 9-11 s of CPU; at these, 9 young ones and no full one, 0.1 s. Almost everything the router
# allocates is freed by reference counting; the rare cycles wait a little longer.
GC_THRESHOLDS = (20_000, 50, 100)

log = logging.getLogger("router.service")

_T = TypeVar("_T")


def run_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """Run `main` to completion on uvloop when it is installed, else on asyncio's own loop.

    uvloop does the same work with less interpreter time per socket event and callback, which
    is most of what a receiver does between the signature check and the broker's answer.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def serve(
    settings: Settings,
    *,
    role: Role,
    dev: bool = False,
    config_path: str | None = None,
    reuse_port: bool = False,
    bootstrap: str | None = None,
    worker: int = 0,
) -> None:
    """Serve until a termination signal; SIGHUP re-reads `config_path` for a new policy.
    `worker` numbers the process under --workers N (its own metrics port, if configured)."""
    app = create_app(settings, role=role, dev_keys=_dev_keys(dev), bootstrap=bootstrap)
    metrics = app[RUNTIME].metrics
    metrics.set_process(worker)
    _make_room_for(settings.server.max_connections)
    runner = ListenerRunner(
        app,
        app[CONNECTIONS],
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.server.shutdown_grace_seconds,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, app, config_path)
    stack = contextlib.ExitStack()
    try:
        site = web.TCPSite(
            runner, settings.server.host, settings.server.port, reuse_port=reuse_port or None
        )
        await site.start()
        if reuse_port and settings.server.worker_metrics_port is not None:
            # (a thread of prometheus-client's own: a scrape there never waits for the loop)
            metrics_server, _ = start_http_server(
                settings.server.worker_metrics_port + worker,
                addr=settings.server.host,
                registry=metrics.registry,
            )
            stack.callback(metrics_server.server_close)
            stack.callback(metrics_server.shutdown)  # (first: callbacks run last in, first out)
        # Everything made while starting (modules, config, clients) lives as long as the
        # process: out of the collector's way, so that its full collections stay short.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info(
            "listening",
            extra={"host": settings.server.host, "port": settings.server.port, "role": role},
        )
        await stop.wait()
        log.info("shutting down: draining requests")
    finally:
        stack.close()
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    log.info("stopped")


# Descriptors beside the connections: Kafka, the RTK and key URLs, logs, the loop itself.
_SPARE_DESCRIPTORS = 256


def _make_room_for(connections: int) -> None:
    """Raise the soft descriptor limit towards the hard one so that `max_connections` fit;
    past the limit, accepting fails and every delivery with it (with a warning if it stays)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "the open-file limit is below server.max_connections plus room for the rest",
            extra={"limit": soft, "max_connections": connections},
        )


def _reload(app: web.Application, config_path: str) -> None:
    """Re-read the configuration; a valid file puts its policies in force, an invalid one is
    refused with its problems logged and the last good policies kept. In the `apps` form each
    app's policy stands alone: an invalid one keeps that app's last good policy, the others
    take their new ones."""
    runtime = app[RUNTIME]
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        log.error(  # noqa: TRY400 - a refused file is reported by its problems, not a traceback
            "configuration reload refused; the last good policy stays in force",
            extra={"problems": exc.problems, "policy_version": runtime.policy.version},
        )
        if not runtime.apps.single:
            _reload_app_policies(runtime, app_policies(config_path))
        return
    changed = False
    for each in loaded.settings.app_settings():
        if each.name in runtime.apps:
            changed = runtime.apply_policy(each.policy, each.name) or changed
    others = [
        name
        for name in type(loaded.settings).model_fields
        if name != "policy"
        and _without_policies(loaded.settings, name) != _without_policies(runtime.settings, name)
    ]
    if others:
        log.warning(
            "configuration reloaded: only the policy applies without a restart",
            extra={"restart_needed_for": others},
        )
    if not changed:
        log.info("configuration reloaded: the policy is unchanged")


def _reload_app_policies(runtime: Runtime, policies: dict[str, PolicyConfig | list[str]]) -> None:
    """Put in force the apps' policies that are valid on their own."""
    for name, policy in policies.items():
        if name not in runtime.apps:
            continue
        if isinstance(policy, list):
            log.error(
                "policy reload refused for this app; its last good policy stays in force",
                extra={
                    "app": name,
                    "problems": policy,
                    "policy_version": runtime.apps[name].policy.version,
                },
            )
        else:
            runtime.apply_policy(policy, name)


def _without_policies(settings: Settings, name: str) -> object:
    """A part of the settings as compared on reload: apps without their policies (which a
    reload applies), anything else as it is."""
    value = getattr(settings, name)
    if name == "apps" and value is not None:
        return [a.model_copy(update={"policy": PolicyConfig()}) for a in value]
    return value


def _dev_keys(dev: bool) -> list[rsa.RSAPublicKey]:
    if not dev:
        return []
    from router.devkeys import DEV_DIR, dev_public_key

    log.warning(
        "DEV MODE: deliveries signed with the local key in %s/ are trusted. "
        "Never run --dev in production.",
        DEV_DIR,
    )
    return [dev_public_key()]


def run_workers(
    config_path: str, settings: Settings, *, role: Role, dev: bool, workers: int, log_level: str
) -> int:
    """Supervise `workers` serving processes; the exit code is the first failing child's."""
    if dev:
        from router.devkeys import ensure_dev_keys

        # Made here, once: children creating it at the same time would each trust their own.
        ensure_dev_keys()
    return run_loop(
        _supervise(config_path, settings, role=role, dev=dev, workers=workers, log_level=log_level)
    )


async def _supervise(
    config_path: str, settings: Settings, *, role: Role, dev: bool, workers: int, log_level: str
) -> int:
    broker: EmbeddedBroker | None = None
    bootstrap = settings.kafka.bootstrap_servers
    if settings.kafka.embedded:
        broker = EmbeddedBroker(port=settings.kafka.embedded_port)
        await broker.start()
        bootstrap = broker.bootstrap_servers
    context = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = [
        context.Process(
            target=_child,
            args=(config_path, role, dev, bootstrap, log_level),
            kwargs={"worker": n, "parent": os.getpid()},
            name=f"router-worker-{n}",
        )
        for n in range(workers)
    ]
    for child in children:
        child.start()
    log.info("started worker processes", extra={"workers": workers, "pids": _pids(children)})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _signal_all, children, signal.SIGHUP)
    try:
        # Processes cannot set an event here, so their liveness is polled.
        while not stop.is_set() and all(child.is_alive() for child in children):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    finally:
        _signal_all(children, signal.SIGTERM)
        grace = settings.server.shutdown_grace_seconds + 10
        for child in children:
            await asyncio.to_thread(child.join, grace)
            if child.is_alive():
                child.kill()
                await asyncio.to_thread(child.join)
        if broker is not None:
            await broker.stop()
    failed = [c.exitcode for c in children if c.exitcode not in (0, -signal.SIGTERM)]
    return int(failed[0] or 1) if failed and not stop.is_set() else 0


def _child(
    config_path: str,
    role: Role,
    dev: bool,
    bootstrap: str,
    log_level: str,
    *,
    worker: int,
    parent: int,
) -> None:
    """One serving process of a supervised group."""
    die_with_parent(parent, signal.SIGTERM)  # (a killed supervisor: stop, drain, go)
    logs.configure(log_level)
    settings = load_config(config_path).settings
    try:
        run_loop(
            serve(
                settings,
                role=role,
                dev=dev,
                config_path=config_path,
                reuse_port=True,
                bootstrap=None if bootstrap == settings.kafka.bootstrap_servers else bootstrap,
                worker=worker,
            )
        )
    except Exception as exc:
        from router.cli import report

        code = report(exc)  # (one line, as from `router serve` itself)
        if code is None:
            raise
        sys.exit(code)


def _signal_all(children: Sequence[BaseProcess], signum: int) -> None:
    for child in children:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signum)


def _pids(children: Sequence[BaseProcess]) -> list[int | None]:
    return [child.pid for child in children]


def config_file(path: str) -> str:
    """The absolute path, so that worker processes find it whatever their directory."""
    return str(Path(path).resolve())
