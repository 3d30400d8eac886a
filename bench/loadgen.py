"""Open-loop load at a fixed rate, for the latency figures wrk cannot give (wrk is closed-loop
and wrk2 is not packaged by Debian): request `i` is due at `start + i / rate` whether or not
earlier ones have been answered, and its latency is counted from that due time. A router that
falls behind therefore shows its queueing in the figures instead of slowing the load down
(no coordinated omission). The generator's own delay in sending (`lag`) is reported too, so
that a busy load generator is not mistaken for a slow router.

The client is a minimal HTTP/1.1 one on asyncio protocols, with keep-alive connections opened
as the load needs them: aiohttp's client spends about 0.35 ms of CPU per request, a third of a
core at 1,000 req/s on the same small machine as the router; this one about 0.15 ms, most of
it the kernel's loopback TCP, and no task or future per request.
It speaks only what the router and the bare server answer: a status line, headers and a
`Content-Length` body.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.bodies import Signed

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class Shot:
    """One request: its meeting, when it was due, sent and answered (monotonic s), status."""

    meeting_id: str
    due: float
    sent: float
    done: float
    status: int  # 0: no answer (connection failed or closed, or no answer in time)

    @property
    def latency(self) -> float:
        """From the moment the request was due to its answer."""
        return self.done - self.due

    @property
    def lag(self) -> float:
        """How late the generator sent it."""
        return self.sent - self.due


class _Pending:
    """A request on its way: filled in by the connection when the answer is complete."""

    __slots__ = ("done", "due", "meeting_id", "sent", "status")

    def __init__(self, meeting_id: str, due: float) -> None:
        self.meeting_id = meeting_id
        self.due = due
        self.sent = due
        self.done = 0.0
        self.status = -1  # not answered yet

    def shot(self, timeout: float) -> Shot:
        if self.status < 0:
            return Shot(self.meeting_id, self.due, self.sent, self.due + timeout, 0)
        return Shot(self.meeting_id, self.due, self.sent, self.done, self.status)


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; no task or future per
    request, so that the generator stays cheap."""

    def __init__(self, idle: list[_Connection]) -> None:
        self._idle = idle
        self._transport: Any = None
        self._buffer = bytearray()
        self._pending: _Pending | None = None
        self._needed = -1  # bytes of the whole answer, once its head is in
        self._status = 0

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def send(self, request: bytes, pending: _Pending) -> None:
        self._pending = pending
        pending.sent = time.monotonic()
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._needed < 0:
            end = self._buffer.find(_HEAD_END)
            if end < 0:
                return
            head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            self._status = int(head[0].split(" ", 2)[1])
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self._needed = end + len(_HEAD_END) + length
        if len(self._buffer) >= self._needed:
            del self._buffer[: self._needed]
            self._needed = -1
            pending, self._pending = self._pending, None
            if pending is not None:
                pending.done = time.monotonic()
                pending.status = self._status
            self._idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._idle:
            self._idle.remove(self)
        if self._pending is not None and self._pending.status < 0:
            self._pending.done = time.monotonic()
            self._pending.status = 0

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def request_bytes(url: str, item: Signed, delivery_id: str) -> bytes:
    """The whole HTTP/1.1 request RTK would send for `item`."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(item.body)}\r\n"
        f"rtk-signature: {item.signature}\r\n"
        f"rtk-uuid: {delivery_id}\r\n"
        "rtk-webhook-id: bench-webhook\r\n\r\n"
    )
    return head.encode("ascii") + item.body


class _Client:
    """Sends each request on an idle connection, opening one whenever none is idle."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._idle: list[_Connection] = []
        self._all: list[_Connection] = []
        self._opening: set[asyncio.Task[None]] = set()
        self._nonce = secrets.token_hex(4)

    def shoot(self, item: Signed, number: int, due: float) -> _Pending:
        pending = _Pending(item.meeting_id, due)
        request = request_bytes(self.url, item, f"{self._nonce}-0000-4000-8000-{number:012x}")
        if self._idle:
            self._idle.pop().send(request, pending)
        else:
            task = asyncio.create_task(self._connect_and_send(request, pending))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
        return pending

    async def _connect_and_send(self, request: bytes, pending: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self._idle), self._host, self._port
            )
        except OSError:
            pending.done, pending.status = time.monotonic(), 0
            return
        self._all.append(connection)
        connection.send(request, pending)

    def close(self) -> None:
        for task in self._opening:
            task.cancel()
        for connection in self._all:
            connection.close()


async def fixed_rate(
    url: str, items: Sequence[Signed], *, rate: float, count: int, timeout: float = 10.0
) -> list[Shot]:
    """Send `count` requests at `rate` per second, cycling through `items`; every result (a
    request not answered `timeout` s after the last one was due counts as failed)."""
    if count <= 0 or not items:
        return []
    client = _Client(url)
    pending: list[_Pending] = []
    start = time.monotonic() + 0.05
    try:
        i = 0
        while i < count:
            now = time.monotonic()
            while i < count and start + i / rate <= now:
                pending.append(client.shoot(items[i % len(items)], i, start + i / rate))
                i += 1
            if i < count:
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        deadline = time.monotonic() + timeout
        while any(p.status < 0 for p in pending) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        client.close()
    return [p.shot(timeout) for p in pending]
