"""Signed webhook deliveries from the emulator, kept in order per recording or meeting.

Like RTK, a delivery that gets a 5xx, a time-out or a connection error is tried again a few
times with growing pauses, and one that gets any other non-2xx answer is given up at once.
Deliveries that share a key (a recording id, or a meeting id for meeting events) go out one
after another, each waiting for the one before it to finish, whatever became of it.

A `Drop` loses chosen deliveries for good, as RTK does once it gives up: they are never sent,
and logged with the error `dropped`, so that a test can show what the router does without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from router import clock
from router.emulator.config import MAX_WEBHOOK_ANSWER_BYTES
from router.errors import AnswerTooLarge
from router.limited import read_limited
from router.samples import encode_payload, webhook_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRecord:
    """What became of one delivery: the last answer (None: no answer) after `attempts` tries."""

    key: str
    event: str
    delivery_id: str
    status: int | None
    attempts: int
    error: str | None
    at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event": self.event,
            "delivery_id": self.delivery_id,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "at": self.at,
        }


@dataclass
class Drop:
    """Lose deliveries of these events (None: any) about these meetings (None: any), each with
    `probability` (drawn from `rng`, seeded for a repeatable sequence); `remaining` of them at
    most (None: no end)."""

    events: frozenset[str] | None = None
    meetings: frozenset[str] | None = None
    probability: float = 1.0
    remaining: int | None = None
    dropped: int = 0
    # Chance, not secrecy: which deliveries are lost only has to look random.
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def takes(self, event: str, meeting_id: str | None) -> bool:
        """Whether this delivery is lost (used up by one when it is)."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.events is not None and event not in self.events:
            return False
        if self.meetings is not None and meeting_id not in self.meetings:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.dropped += 1
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "events": sorted(self.events) if self.events is not None else None,
            "meetings": sorted(self.meetings) if self.meetings is not None else None,
            "probability": self.probability,
            "remaining": self.remaining,
            "dropped": self.dropped,
        }


class WebhookSender:
    """Signs payloads with the emulator's key and posts them to `url`, when one is set."""

    def __init__(
        self,
        *,
        url: str | None,
        private_key: rsa.RSAPrivateKey,
        webhook_id: str,
        attempts: int,
        backoff: float,
        timeout: float,
    ) -> None:
        self.url = url
        self._key = private_key
        self._webhook_id = webhook_id
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.deliveries: list[DeliveryRecord] = []
        self.drops: list[Drop] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Abandon deliveries still in flight and close the HTTP session."""
        await self.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def cancel(self) -> None:
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tails.clear()

    async def drain(self) -> None:
        """Wait until every delivery queued so far has finished."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def send(self, key: str, payload: dict[str, Any], meeting_id: str | None = None) -> None:
        """Queue a delivery of `payload` behind earlier ones with the same key, unless a drop
        loses it; `meeting_id` is the meeting it is about (default: the key)."""
        if self.url is None:
            return
        body = encode_payload(payload)
        headers = webhook_headers(self._key, body, webhook_id=self._webhook_id)
        event = str(payload.get("event"))
        about = key if meeting_id is None else meeting_id
        if any(drop.takes(event, about) for drop in self.drops):
            record = DeliveryRecord(
                key, event, headers["rtk-uuid"], None, 0, "dropped", clock.monotonic()
            )
            self.deliveries.append(record)
            return
        previous = self._tails.get(key)
        task = asyncio.create_task(self._deliver(previous, key, event, body, headers))
        self._tails[key] = task
        self._pending.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def _deliver(
        self,
        previous: asyncio.Task[None] | None,
        key: str,
        event: str,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, self._attempts + 1):
            status, error = await self._post(body, headers)
            if status is not None and status < 500:
                break  # delivered (2xx) or refused (3xx/4xx): RTK tries neither again
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        if status is None or not 200 <= status < 300:
            log.warning(
                "webhook delivery failed",
                extra={"event": event, "url": self.url, "status": status, "error": error},
            )
        self.deliveries.append(
            DeliveryRecord(
                key, event, headers["rtk-uuid"], status, attempt, error, clock.monotonic()
            )
        )

    async def wait_answering(self, interval: float = 0.2) -> None:
        """Return once the webhook URL answers HTTP at all, other than with a 5xx (a GET: a
        receiver answers 405, and that is enough). Deliveries made to a receiver that is not
        up yet would be lost after their few retries."""
        assert self._session is not None, "start() the sender before waiting"
        while self.url is not None:
            try:
                async with self._session.get(self.url, timeout=self._timeout) as response:
                    if response.status < 500:
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(interval)

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        assert self._session is not None, "start() the sender before sending"
        assert self.url is not None
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                # Only the status counts; the answer is read (so that the connection can be
                # used again) up to a limit: a broken target cannot fill the emulator's memory.
                with contextlib.suppress(AnswerTooLarge):
                    await read_limited(
                        response, MAX_WEBHOOK_ANSWER_BYTES, "the webhook answer", "its limit"
                    )
                return response.status, None
        except TimeoutError:
            return None, "timeout"
        except aiohttp.ClientError as exc:
            return None, type(exc).__name__
