"""The composition root: `create_app` wires configuration, broker, Kafka, receiver, worker and
the operations endpoints into one aiohttp application, with start-up and shutdown in order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from handlers import Ports
from router.apps import App, Apps
from router.broker import EmbeddedBroker
from router.clock import now
from router.config import Settings
from router.core.policy import Policy, PolicyConfig
from router.core.terms import Mode
from router.errors import UsageError
from router.health import Health
from router.kafka import Publisher, TopicAdmin
from router.listener import READ_BUFSIZE, Connections
from router.metrics import Metrics
from router.processing import Processor
from router.receiver import Receiver, Source
from router.verification import build_verifier
from router.worker import Worker

log = logging.getLogger("router.app")
# Room beside a body for its headers and the record framing on the log (a dead-letter copy
# adds a few more headers).
MESSAGE_OVERHEAD_BYTES = 64 * 1024

Role = Literal["all", "receiver", "worker"]


@dataclass
class Runtime:
    """The live parts of one running app, filled in as start-up proceeds."""

    settings: Settings
    role: Role
    metrics: Metrics
    bootstrap: str
    broker: EmbeddedBroker | None = None
    session: aiohttp.ClientSession | None = None
    admin: TopicAdmin | None = None
    publisher: Publisher | None = None
    health: Health | None = None
    sources: list[Source] = field(default_factory=list)
    worker: Worker | None = None
    processor: Processor | None = None
    apps: Apps = field(init=False)

    def __post_init__(self) -> None:
        self.apps = Apps.from_settings(self.settings)
        for app in self.apps.values():
            self.metrics.set_policy(app.policy.version, app.mode, app.name)

    @property
    def first_app(self) -> App:
        """The app of the single-app form (the first app of the `apps` form)."""
        return next(iter(self.apps.values()))

    @property
    def policy(self) -> Policy:
        return self.first_app.policy

    @property
    def mode(self) -> Mode:
        """The mode in force: shadow whatever the config says when there is no API token."""
        return self.first_app.mode

    def apply_policy(self, config: PolicyConfig, app: str | None = None) -> bool:
        """Put a new policy in force for `app`'s events processed from now on; False if
        unchanged."""
        current = self.apps[app]
        if Policy.from_config(config).version == current.policy.version:
            return False
        changed = current.with_policy(config)
        self.apps = self.apps.replaced(changed)
        if app is None:
            self.settings = self.settings.model_copy(update={"policy": config})
        self.metrics.set_policy(changed.policy.version, changed.mode, app)
        if self.processor is not None:
            self.processor.use_policy(changed.policy, changed.mode, app)
        log.info(
            "policy in force",
            extra={
                "app": changed.label,
                "policy_version": changed.policy.version,
                "mode": changed.mode,
            },
        )
        return True


RUNTIME = web.AppKey("runtime", Runtime)
# The app's connection limits, installed on its server by `router.listener.ListenerRunner`.
CONNECTIONS = web.AppKey("connections", Connections)


def create_app(
    settings: Settings,
    *,
    role: Role = "all",
    dev_keys: Sequence[rsa.RSAPublicKey] = (),
    bootstrap: str | None = None,
    metrics: Metrics | None = None,
    health_interval: float = 2.0,
) -> web.Application:
    """The application for `settings`; `bootstrap` overrides where Kafka is (tests)."""
    metrics = metrics or Metrics(apps=settings.apps is not None)
    connections = Connections(settings.server, metrics)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        handler_args={
            "keepalive_timeout": settings.server.keepalive_timeout_seconds,
            "read_bufsize": READ_BUFSIZE,
        },
    )
    runtime = Runtime(
        settings=settings,
        role=role,
        metrics=metrics,
        bootstrap=bootstrap or settings.kafka.bootstrap_servers,
    )
    app[RUNTIME] = runtime
    app[CONNECTIONS] = connections
    kafka = settings.kafka
    if kafka.embedded and bootstrap is None:
        app.cleanup_ctx.append(_embedded_broker)
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_kafka)

    async def _health(app: web.Application) -> AsyncIterator[None]:
        assert runtime.publisher is not None
        assert runtime.admin is not None
        runtime.health = Health(runtime.publisher, runtime.admin, {}, interval=health_interval)
        for source in runtime.sources:
            runtime.health.add_check(f"key:{source.config.name}", source.verifier.ready)
        await runtime.health.probe()
        if runtime.health.too_small is not None:
            # (every large body would be answered 503 for ever: better not to start)
            raise UsageError(runtime.health.too_small)
        runtime.health.start()
        yield
        await runtime.health.stop()

    if role in ("all", "receiver"):

        async def _receiver(app: web.Application) -> AsyncIterator[None]:
            assert runtime.session is not None
            runtime.sources = [
                Source(source, build_verifier(source, runtime.session, dev_keys))
                for source in settings.sources
            ]
            assert runtime.publisher is not None
            receiver = Receiver(settings, runtime.sources, runtime.publisher, runtime.metrics)
            app.router.add_routes(receiver.routes())
            yield

        app.cleanup_ctx.append(_receiver)
    app.cleanup_ctx.append(_health)
    if role in ("all", "worker"):
        app.cleanup_ctx.append(_worker)
    for path, handler in (("/healthz", _healthz), ("/readyz", _readyz), ("/metrics", _metrics)):
        app.router.add_get(path, handler, expect_handler=_no_expectation)
    return app


async def _no_expectation(request: web.Request) -> None:
    """The operations endpoints take no body, so an `Expect` header is ignored (aiohttp's
    default handler would answer 500 to one that is not valid UTF-8)."""


async def _embedded_broker(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    broker = EmbeddedBroker(port=runtime.settings.kafka.embedded_port)
    await broker.start()
    runtime.broker = broker
    runtime.bootstrap = broker.bootstrap_servers
    yield
    await broker.stop()


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    async with aiohttp.ClientSession() as session:
        runtime.session = session
        yield


async def _kafka(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    kafka = runtime.settings.kafka
    topics = [getattr(kafka.topics, name) for name in type(kafka.topics).model_fields]
    # The largest body accepted, with room for its headers and the record framing.
    size = runtime.settings.server.max_body_bytes + MESSAGE_OVERHEAD_BYTES
    runtime.admin = TopicAdmin(kafka, runtime.bootstrap, topics, max_message_bytes=size)
    runtime.publisher = Publisher(
        kafka, runtime.bootstrap, runtime.admin, max_message_bytes=size, metrics=runtime.metrics
    )
    yield
    # Requests have finished by now (the runner drains them first): flush and disconnect.
    await runtime.publisher.stop()
    await runtime.admin.close()


async def _worker(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    assert runtime.publisher is not None
    assert runtime.health is not None
    # Each app its own RTK client: its credentials, rate limit and retry budget.
    for app_name in list(runtime.apps):
        runtime.apps = runtime.apps.replaced(runtime.apps[app_name].with_client(runtime.metrics))
    ports = {
        app.name: Ports(
            policy=app.policy,
            mode=app.mode,
            rtk=app.rtk,
            metrics=runtime.metrics.for_app(app.name),
            now=now,
            app=app.name,
        )
        for app in runtime.apps.values()
    }
    processor = Processor(
        topics=settings.kafka.topics,
        ports=ports[runtime.first_app.name],
        metrics=runtime.metrics,
        now=now,
        apps=ports,
        sources={s: app.name for app in runtime.apps.values() for s in app.settings.sources},
    )
    runtime.processor = processor
    worker = Worker(settings, runtime.bootstrap, runtime.publisher, processor, runtime.metrics)
    runtime.worker = worker
    runtime.health.add_check("worker", worker.ready)
    runtime.health.add_check("reconcile", worker.reconciler.ready)
    worker.start()
    yield
    await worker.stop(settings.server.shutdown_grace_seconds)
    for each in runtime.apps.values():
        if each.rtk is not None:
            await each.rtk.close()


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    assert runtime.health is not None
    ready, checks = await runtime.health.readiness()
    body: dict[str, object] = {
        "ready": ready,
        "checks": checks,
        "policy_version": runtime.policy.version,
        "mode": runtime.mode,
    }
    if not runtime.apps.single:
        body["apps"] = {
            app.label: {"mode": app.mode, "policy_version": app.policy.version}
            for app in runtime.apps.values()
        }
    # Conditions the instance is ready with, but an operator should know of.
    warnings = []
    for app in runtime.apps.values():
        if app.mode != app.settings.policy.mode:
            where = "" if app.name is None else f"app {app.name}: "
            warnings.append(f"{where}no realtimekit.api_token: the policy runs in shadow mode")
    if runtime.publisher is not None and runtime.publisher.idempotence_note:
        warnings.append(runtime.publisher.idempotence_note)
    if warnings:
        body["warnings"] = warnings
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})
