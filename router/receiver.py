"""The webhook endpoint: raw bytes in, verified delivery on the Kafka log, then (only then) 200.

The order of the checks is the contract of SPEC 5.1: size, signature over the raw bytes, JSON
shape, duplicate, append and wait for the broker. Errors are mapped to HTTP in exactly one
place, `status_for`; anything unexpected is answered 503 (RTK retries) and logged as a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from router import envelope
from router.clock import monotonic, now
from router.config import Settings, SourceConfig
from router.core.dedupe import DeliveryDedupe
from router.core.delivery import RTK_EVENTS, parse_payload
from router.errors import (
    BodyTooLarge,
    DependencyError,
    PayloadError,
    RouterError,
    SignatureError,
)
from router.kafka import Publisher
from router.listener import BodyReader
from router.metrics import Metrics
from router.verification import Verifier

log = logging.getLogger("router.receiver")

RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Source:
    """A configured endpoint and the verifier of its scheme."""

    config: SourceConfig
    verifier: Verifier


@dataclass(frozen=True)
class _Delivery:
    """An authentic delivery on its way to the log."""

    source: Source
    request: web.Request
    body: bytes
    payload: dict[str, Any]
    event: str
    delivery_id: str


def status_for(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The one mapping from errors to HTTP answers."""
    if isinstance(exc, SignatureError):
        return 401, {"error": "invalid_signature"}
    if isinstance(exc, PayloadError):
        return 400, {"error": "invalid_payload", "detail": exc.detail}
    if isinstance(exc, BodyTooLarge):
        return 413, {"error": "body_too_large", "limit": exc.limit}
    if isinstance(exc, DependencyError):
        return 503, {"error": "unavailable", "detail": str(exc)}
    return 503, {"error": "internal"}


class Receiver:
    """Handles POSTs for every source; one instance per app."""

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[Source],
        publisher: Publisher,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._sources = {s.config.name: s for s in sources}
        # The app each source's webhooks belong to (none in the single-app form).
        self._apps = {source: app.name for app in settings.app_settings() for source in app.sources}
        self._publisher = publisher
        self._metrics = metrics
        self._dedupe = DeliveryDedupe(
            window=settings.server.dedupe_content_seconds,
            max_entries=settings.server.dedupe_max_entries,
        )
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self._bodies = BodyReader(settings.server, metrics)

    def routes(self) -> list[web.RouteDef]:
        """One route per source: POST is a delivery, any other method gets 405. Every method
        is routed here so that `Expect` is always answered by `_expect`, never by aiohttp's
        default handler (which answers 500 to an `Expect` that is not valid UTF-8)."""
        return [
            web.route(
                "*", s.config.path, self._handler_for(s.config.name), expect_handler=self._expect
            )
            for s in self._sources.values()
        ]

    def _handler_for(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            if request.method != "POST":
                raise web.HTTPMethodNotAllowed(request.method, ["POST"])
            return await self.handle(self._sources[name], request)

        return handler

    async def _expect(self, request: web.Request) -> web.Response | None:
        """`Expect: 100-continue` on a POST: the body is asked for only when its declared size
        fits the limit (a larger one is refused with 413 by `handle`, before it is sent); any
        other expectation cannot be met (417)."""
        if request.method != "POST":
            return None  # refused with 405 by the handler
        if request.headers.get("Expect", "").lower() != "100-continue":
            return web.json_response({"error": "expectation_failed"}, status=417)
        size = request.content_length
        if request.version >= (1, 1) and (
            size is None or size <= self._settings.server.max_body_bytes
        ):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the interim answer is not part of the response
        return None

    async def handle(self, source: Source, request: web.Request) -> web.Response:
        """Answer one delivery; never raises."""
        started = monotonic()
        name = source.config.name
        event = "-"
        delivery_id: str | None = None
        try:
            body = await self._bodies.read(request)
            await source.verifier.verify(request.headers, body)
            payload, event = parse_payload(body)
            delivery_id = request.headers.get(envelope.RTK_UUID) or str(uuid.uuid4())
            status, answer = await self._accept(
                _Delivery(source, request, body, payload, event, delivery_id)
            )
        except RouterError as exc:
            status, answer = status_for(exc)
            if isinstance(exc, SignatureError):
                self._metrics.signature_failures.labels(source=name, reason=exc.reason).inc()
        except Exception as exc:
            log.exception("unexpected error handling a delivery", extra={"source": name})
            status, answer = status_for(exc)
        label = event if event in RTK_EVENTS else ("-" if event == "-" else "other")
        metrics = self._metrics.for_app(self._apps.get(name))
        metrics.inc(metrics.webhooks, name, label, str(status))
        if status >= 300 or self._settings.server.access_log:
            shown = event if event in RTK_EVENTS else label
            _log_delivery(
                source=name, event=shown, delivery_id=delivery_id, status=status, started=started
            )
        headers = _RETRY_LATER if status == 503 else None
        return web.Response(
            body=_encode(answer), status=status, headers=headers, content_type="application/json"
        )

    async def _accept(self, delivery: _Delivery) -> tuple[int, dict[str, Any]]:
        request, body = delivery.request, delivery.body
        rtk_uuid = request.headers.get(envelope.RTK_UUID)
        content = DeliveryDedupe.content_key(
            request.headers.get(envelope.RTK_WEBHOOK_ID), envelope.body_digest(body)
        )
        keys = [k for k in (rtk_uuid and f"u:{rtk_uuid}", f"c:{content}") if k]
        if self._dedupe.seen(rtk_uuid, content, monotonic()):
            return 200, {"status": "duplicate"}
        for key in keys:
            pending = self._inflight.get(key)
            if pending is not None and await asyncio.shield(pending):
                return 200, {"status": "duplicate"}
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._inflight[key] = done
        try:
            await self._append(delivery)
            self._dedupe.remember(rtk_uuid, content, monotonic())
            done.set_result(True)
        except BaseException:
            done.set_result(False)
            raise
        finally:
            for key in keys:
                if self._inflight.get(key) is done:
                    del self._inflight[key]
        return 200, {"status": "accepted", "id": delivery.delivery_id}

    async def _append(self, delivery: _Delivery) -> None:
        message = envelope.seal(
            self._settings.kafka.topics.webhooks,
            delivery.body,
            delivery.payload,
            rtk_headers=delivery.request.headers,
            source=delivery.source.config.name,
            event=delivery.event,
            delivery_id=delivery.delivery_id,
            received_at=now(),
            app=self._apps.get(delivery.source.config.name),
        )
        started = monotonic()
        await self._publisher.publish(
            message.topic,
            message.value,
            key=message.key,
            headers=message.headers,
            timeout=self._settings.kafka.ack_timeout_seconds,
        )
        self._metrics.publish_seconds.observe(monotonic() - started)


def _log_delivery(
    *, source: str, event: str, delivery_id: str | None, status: int, started: float
) -> None:
    log.info(
        "webhook",
        extra={
            "source": source,
            "event": event,
            "delivery_id": delivery_id,
            "status": status,
            "latency_ms": round((monotonic() - started) * 1000, 2),
        },
    )


_RETRY_LATER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _encode(answer: dict[str, Any]) -> bytes:
    """JSON is UTF-8 (RFC 8259): the bytes go out as they are, with no charset to negotiate."""
    return json.dumps(answer, separators=(",", ":")).encode()
