"""Limits on what clients can hold of the server: connections, time and body memory.

aiohttp alone keeps an idle connection for an hour and reads any number of bodies at once.
Here, per process:

- `server.keepalive_timeout_seconds`: aiohttp closes a connection with no request in progress
  after this long, counted from its opening and from each answer.
- `server.header_timeout_seconds`: a new connection must complete its first request's headers
  within this long, or it is closed (later requests are bounded by the keep-alive time-out).
- `server.max_connections`: a connection beyond it makes room by closing the connection that
  has been idle (no request in progress) the longest; when every one has a request in
  progress, the newcomer is closed instead. So idle sockets cannot crowd out a delivery.
- `server.body_timeout_seconds` and `server.max_body_reads` are applied by `BodyReader`: a
  body larger than aiohttp's read buffer (which bounds what a connection buffers unread) is
  read only under one of `max_body_reads` slots, and the wait for a slot plus the read must
  end within the time-out, else 503. A small body (a webhook) needs no slot, so slow large
  bodies do not hold it up.

`Connections` is made with the app and installed on the aiohttp server by `ListenerRunner`; it
notes the start and the end of every request by wrapping the server's request factory and
handler (an app middleware would do the same at several times the cost per request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from router.config import ServerConfig
from router.errors import BodyTimeout, BodyTooLarge, PayloadError
from router.metrics import Metrics

# aiohttp's per-connection read buffer: a body up to this size is buffered by the connection
# whether or not anyone reads it (reading pauses beyond twice this), so it needs no slot.
READ_BUFSIZE = 65_536


class _Connection:
    __slots__ = ("busy", "header_timer")

    def __init__(self, header_timer: asyncio.TimerHandle | None) -> None:
        # A request in progress: set when its headers are complete, cleared when its handler
        # returns (aiohttp handles one request of a connection at a time; an answer aiohttp
        # gives without calling the handler leaves it set until the next request).
        self.busy = False
        self.header_timer = header_timer


class Connections:
    """Counts the server's connections, closes slow and surplus ones (see the module doc)."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        # Oldest activity first: a connection moves to the end when a request starts or ends.
        self._open: dict[RequestHandler, _Connection] = {}

    def __len__(self) -> int:
        return len(self._open)

    def install(self, server: web.Server) -> None:
        """Hook into the server's connection and request events (it has no other hooks)."""
        made, lost, make_request, handle = (
            server.connection_made,
            server.connection_lost,
            server.request_factory,
            server.request_handler,
        )

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._opened(handler)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._closed(handler)

        def request_factory(*args: Any) -> web.BaseRequest:
            request = make_request(*args)
            self._request_started(request.protocol)
            return request

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handle(request)
            finally:
                self._request_ended(request.protocol)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory
        server.request_handler = request_handler

    def _opened(self, handler: RequestHandler) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._config.header_timeout_seconds, self._headers_late, handler)
        self._open[handler] = _Connection(timer)
        self._metrics.http_connections.set(len(self._open))
        if len(self._open) > self._config.max_connections:
            self._make_room(handler)

    def _closed(self, handler: RequestHandler) -> None:
        connection = self._open.pop(handler, None)
        if connection is not None and connection.header_timer is not None:
            connection.header_timer.cancel()
        self._metrics.http_connections.set(len(self._open))

    def _request_started(self, handler: RequestHandler) -> None:
        connection = self._open.get(handler)
        if connection is None:
            return
        if connection.header_timer is not None:
            connection.header_timer.cancel()
            connection.header_timer = None
        connection.busy = True
        self._touch(handler)

    def _request_ended(self, handler: RequestHandler) -> None:
        connection = self._touch(handler)
        if connection is not None:
            connection.busy = False

    def _touch(self, handler: RequestHandler) -> _Connection | None:
        """Make the connection the most recently active one (None: not counted)."""
        connection = self._open.pop(handler, None)
        if connection is not None:
            self._open[handler] = connection
        return connection

    def _headers_late(self, handler: RequestHandler) -> None:
        connection = self._open.get(handler)
        if connection is not None and not connection.busy:
            self._close(handler, "header_timeout")

    def _make_room(self, newcomer: RequestHandler) -> None:
        for handler, connection in self._open.items():
            if not connection.busy and handler is not newcomer:
                self._close(handler, "evicted_idle")
                return
        self._close(newcomer, "over_max_connections")

    def _close(self, handler: RequestHandler, reason: str) -> None:
        self._closed(handler)  # counted out now: the transport reports its loss later
        handler.force_close()
        self._metrics.http_connections_closed.labels(reason=reason).inc()


class BodyReader:
    """Reads request bodies within `max_body_bytes`, `body_timeout_seconds` and the slots of
    `max_body_reads`."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._slots = asyncio.Semaphore(config.max_body_reads)

    async def read(self, request: web.Request) -> bytes:
        limit = self._config.max_body_bytes
        size = request.content_length
        if size is not None and size > limit:
            raise BodyTooLarge(limit)
        try:
            if request.content.is_eof():  # it came with the headers (a webhook): no wait
                return await request.read()
            timeout = self._config.body_timeout_seconds
            try:
                async with asyncio.timeout(timeout), self._slot(size):
                    return await request.read()
            except TimeoutError:
                raise BodyTimeout(
                    f"the body did not arrive within server.body_timeout_seconds ({timeout:g})"
                ) from None
        except web.HTTPRequestEntityTooLarge:
            raise BodyTooLarge(limit) from None
        except web.RequestPayloadError:  # broken chunked or Content-Encoding data
            raise PayloadError("the body cannot be decoded") from None
        except ConnectionResetError:  # the sender left before its Content-Length arrived
            raise PayloadError("the body ended before its Content-Length") from None

    @contextlib.asynccontextmanager
    async def _slot(self, size: int | None) -> AsyncIterator[None]:
        if size is not None and size <= READ_BUFSIZE:
            yield
            return
        async with self._slots:
            self._metrics.http_bodies_reading.inc()
            try:
                yield
            finally:
                self._metrics.http_bodies_reading.dec()


class ListenerRunner(web.AppRunner):
    """An `AppRunner` whose server is held to the app's `Connections`."""

    def __init__(self, app: web.Application, connections: Connections, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._connections = connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self._connections.install(server)
        return server
