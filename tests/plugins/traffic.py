"""Load and policies shared by the fault and worker tests: a policy that starts recording at
a participant count, steady signed webhook traffic from several senders, and the broker
restarted (empty) under that traffic."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from router.clock import monotonic
from tests.helpers import joined_body, rtk_headers
from tests.plugins.e2e import Loop, eventually


def start_at(participants: int, *, preset: bool = False) -> dict[str, Any]:
    """A policy that starts recording once `participants` peers are in (with `preset`, only
    at a host's join)."""
    when: dict[str, Any] = {"session.participants": {"gte": participants}}
    if preset:
        when["participant.preset"] = {"in": ["host"]}
    return {
        "rules": [
            {
                "name": "start-at-threshold",
                "on": "meeting.participantJoined",
                "when": when,
                "action": "start_recording",
            }
        ]
    }


@dataclass(frozen=True)
class Sent:
    """One webhook sent and how it was answered (`status` 0: no answer at all)."""

    delivery_id: str
    body: bytes
    began: float
    status: int
    retry_after: str | None


@dataclass
class Traffic:
    """Senders posting distinct, correctly signed webhooks one after another until stopped."""

    loop: Loop
    url: str
    sent: list[Sent] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _next: int = 0

    def start(self, senders: int) -> None:
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(senders)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def answered(self, status: int, *, since: float = 0.0) -> list[Sent]:
        return [s for s in self.sent if s.status == status and s.began >= since]

    async def _sender(self) -> None:
        key = self.loop.emulator.state.private_key
        timeout = aiohttp.ClientTimeout(total=30)
        while not self._stop.is_set():
            self._next += 1
            body = joined_body(meeting_id=f"m-steady-{self._next % 8}", peer_id=f"p-{self._next}")
            delivery_id = str(uuid.uuid4())
            headers = rtk_headers(key, body, delivery_id=delivery_id)
            began = monotonic()
            try:
                async with self.loop.http.post(
                    self.url + "/webhooks/realtimekit", data=body, headers=headers, timeout=timeout
                ) as response:
                    await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError):
                status, retry_after = 0, None
            self.sent.append(Sent(delivery_id, body, began, status, retry_after))
            await asyncio.sleep(0.02)


async def restart_broker_under(traffic: Traffic, *, before: int, after: int) -> float:
    """Stop and restart (empty) the loop's broker while `traffic` flows: `before` webhooks
    accepted first, a few refused meanwhile, `after` accepted by the new broker. The time the
    old broker was gone, for `Traffic.answered(since=...)`."""
    broker = traffic.loop.broker
    traffic.start(senders=4)
    try:
        await eventually(lambda: _at_least(traffic.answered(200), before), timeout=30)
        await broker.stop()
        gone = monotonic()
        await eventually(lambda: _at_least(traffic.answered(503, since=gone), 4), timeout=30)
        await broker.start()
        back = monotonic()
        await eventually(lambda: _at_least(traffic.answered(200, since=back), after), timeout=45)
    finally:
        await traffic.stop()
    return gone


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count
