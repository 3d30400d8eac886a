"""Readiness: a background watch over the broker and topics, and the `/readyz` verdict.

The watch runs every `interval` seconds, so a dead broker shows within a few seconds (SPEC: 10).
It also connects the producer when the broker was unreachable at start-up, re-creates topics
a restarted broker lost, and marks the publisher suspect whenever the broker misbehaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from router.kafka import BROKER_ERRORS, IdempotenceRefused, Publisher, TopicAdmin

log = logging.getLogger("router.health")

Check = Callable[[], Awaitable[str | None]]
_PROBE_ERRORS: tuple[type[BaseException], ...] = (*BROKER_ERRORS, TimeoutError)


class Health:
    """Keeps the broker and topic checks fresh and answers readiness."""

    def __init__(
        self,
        publisher: Publisher,
        admin: TopicAdmin,
        checks: Mapping[str, Check],
        *,
        interval: float = 2.0,
        timeout: float = 5.0,
    ) -> None:
        self._publisher = publisher
        self._admin = admin
        self._checks = dict(checks)
        self._interval = interval
        self._timeout = timeout
        self.broker = "not checked yet"
        self.topics = "not checked yet"
        # Topics too small for the largest body accepted (None: not known yet).
        self.too_small: str | None = None
        self._sizes_known = False
        self._task: asyncio.Task[None] | None = None

    def add_check(self, name: str, check: Check) -> None:
        """Another readiness condition (a verification key, the worker, ...)."""
        self._checks[name] = check

    async def probe(self) -> None:
        """One round of checks: connect if needed, then verify (and re-create) the topics."""
        try:
            async with asyncio.timeout(self._timeout):
                if not self._publisher.started:
                    await self._publisher.start()
                missing = await self._admin.ensure()
        except _PROBE_ERRORS as exc:
            if self.broker == "ok":
                # An outage, not a bug: the reason without a traceback.
                log.error("broker unreachable", extra={"error": type(exc).__name__})  # noqa: TRY400
            if isinstance(exc, IdempotenceRefused):
                self.broker = exc.reason
            else:
                self.broker = f"unreachable: {type(exc).__name__}"
            self.topics = "unknown"
            self._publisher.trust.mark_suspect()
            return
        if self.broker != "ok":
            log.info("broker reachable")
        self.broker = "ok"
        if missing:
            self.topics = f"missing: {', '.join(missing)}"
            self._publisher.trust.mark_suspect()
        else:
            await self._check_sizes()
            self.topics = self.too_small or "ok"

    async def _check_sizes(self) -> None:
        """Once the topics exist: do they take the largest body? (Asked once; a broker that
        does not answer is asked again next round.)"""
        if self._sizes_known:
            return
        try:
            async with asyncio.timeout(self._timeout):
                problems = await self._admin.size_problems()
        except _PROBE_ERRORS:
            return
        self._sizes_known = True
        if problems is None:
            log.warning(
                "the broker does not report the topics' max.message.bytes: a body near "
                "server.max_body_bytes is answered 503 if a topic takes less than %s bytes",
                self._admin.max_message_bytes,
            )
            return
        for problem in problems:
            log.error(problem)
        self.too_small = "; ".join(problems) or None

    async def run(self) -> None:
        """Probe forever, every `interval` seconds."""
        while True:
            await self.probe()
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Run the watch in the background."""
        self._task = asyncio.create_task(self.run(), name="health-watch")

    async def stop(self) -> None:
        """Stop the watch."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether the instance should receive traffic, and why not."""
        checks = {
            "producer": "ok" if self._publisher.started else "not connected",
            "broker": self.broker,
            "topics": self.topics,
        }
        for name, check in self._checks.items():
            checks[name] = await check() or "ok"
        return all(v == "ok" for v in checks.values()), checks
