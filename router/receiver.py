"""The webhook endpoint: raw bytes in, verified delivery on the Kafka log, then (only then) 200.

The order of the checks is the contract of SPEC 5.1: size, signature over the raw bytes, JSON
shape, duplicate, append and wait for the broker. Errors are mapped to HTTP in exactly one
place, `status_for`; anything unexpected is answered 503 (RTK retries) and logged as a bug.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from router import envelope
from router.clock import monotonic, rfc3339_now
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
        self._appending = _Appending()
        self._bodies = BodyReader(settings.server, metrics)
        self._topic = settings.kafka.topics.webhooks
        self._ack_timeout = settings.kafka.ack_timeout_seconds
        # (made once: each source's metrics as counted for its app)
        self._metrics_of = {name: metrics.for_app(self._apps.get(name)) for name in self._sources}

    def routes(self) -> list[web.RouteDef]:
        """One route per source: POST is a delivery, any other method gets 405. Every method
        is routed here so that `Expect` is always answered by `_expect`, never by aiohttp's
        default handler (which answers 500 to an `Expect` that is not valid UTF-8)."""
        return [
            web.route(
                "*", s.config.path, functools.partial(self.handle, s), expect_handler=self._expect
            )
            for s in self._sources.values()
        ]

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
        """Answer one request to `source`'s path: 405 unless it is a POST; a delivery's answer
        otherwise, whatever happens (nothing else is raised). One coroutine on purpose: every
        level of awaiting is paid again when the broker's acknowledgement resumes it."""
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        started = monotonic()
        name = source.config.name
        event = "-"
        delivery_id: str | None = None
        try:
            body = await self._bodies.read(request)
            headers = request.headers
            await source.verifier.verify(headers, body)
            payload, event = parse_payload(body)
            rtk_uuid = headers.get(envelope.RTK_UUID)
            delivery_id = rtk_uuid or str(uuid.uuid4())
            content = DeliveryDedupe.content_key(
                headers.get(envelope.RTK_WEBHOOK_ID), envelope.body_digest(body)
            )
            keys = (f"u:{rtk_uuid}", f"c:{content}") if rtk_uuid else (f"c:{content}",)
            if self._dedupe.seen(rtk_uuid, content, monotonic()) or (
                self._appending.any_of(keys) and await self._appending.wait_for(keys)
            ):
                status, answer = 200, _DUPLICATE
            else:
                message = envelope.seal(
                    self._topic,
                    body,
                    payload,
                    rtk_headers=headers,
                    source=name,
                    event=event,
                    delivery_id=delivery_id,
                    received_at=rfc3339_now(),
                    app=self._apps.get(name),
                )
                done = self._appending.claim(keys)
                try:
                    sent = monotonic()
                    await self._publisher.publish(
                        message.topic,
                        message.value,
                        key=message.key,
                        headers=message.headers,
                        timeout=self._ack_timeout,
                    )
                    self._metrics.publish_seconds.observe(monotonic() - sent)
                    self._dedupe.remember(rtk_uuid, content, monotonic())
                    done.set_result(True)
                finally:
                    self._appending.release(keys, done)
                status, answer = 200, _accepted(delivery_id)
        except RouterError as exc:
            status, error = status_for(exc)
            answer = _encode(error)
            if isinstance(exc, SignatureError):
                self._metrics.signature_failures.labels(source=name, reason=exc.reason).inc()
        except Exception as exc:
            log.exception("unexpected error handling a delivery", extra={"source": name})
            status, error = status_for(exc)
            answer = _encode(error)
        label = event if event in RTK_EVENTS else ("-" if event == "-" else "other")
        metrics = self._metrics_of[name]
        metrics.inc(metrics.webhooks, name, label, _STATUS_TEXT.get(status) or str(status))
        if status >= 300 or self._settings.server.access_log:
            shown = event if event in RTK_EVENTS else label
            _log_delivery(
                source=name, event=shown, delivery_id=delivery_id, status=status, started=started
            )
        return web.Response(
            body=answer,
            status=status,
            headers=_RETRY_LATER if status == 503 else None,
            content_type="application/json",
        )


class _Appending:
    """The deliveries being appended, by dedupe key: a copy that arrives meanwhile waits for
    the first one's outcome rather than appending again."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[bool]] = {}

    def any_of(self, keys: Sequence[str]) -> bool:
        """Whether a delivery with one of these keys is being appended."""
        return any(key in self._pending for key in keys)

    async def wait_for(self, keys: Sequence[str]) -> bool:
        """Whether a delivery with one of these keys, being appended, reached the log."""
        for key in keys:
            pending = self._pending.get(key)
            if pending is not None and await asyncio.shield(pending):
                return True
        return False

    def claim(self, keys: Sequence[str]) -> asyncio.Future[bool]:
        """Mark these keys as being appended; the future says whether it succeeded."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._pending[key] = done
        return done

    def release(self, keys: Sequence[str], done: asyncio.Future[bool]) -> None:
        """The append is over: `done` is failed unless it was set, and the keys are free."""
        if not done.done():
            done.set_result(False)
        for key in keys:
            if self._pending.get(key) is done:
                del self._pending[key]


def _accepted(delivery_id: str) -> bytes:
    return b'{"status":"accepted","id":' + json.dumps(delivery_id).encode() + b"}"


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
_DUPLICATE = b'{"status":"duplicate"}'
_STATUS_TEXT = {code: str(code) for code in (200, 400, 401, 405, 413, 503)}


def _encode(answer: dict[str, Any]) -> bytes:
    """JSON is UTF-8 (RFC 8259): the bytes go out as they are, with no charset to negotiate."""
    return json.dumps(answer, separators=(",", ":")).encode()
