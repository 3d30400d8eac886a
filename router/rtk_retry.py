"""How the RTK client judges an answer and waits before trying again.

An attempt ends in one outcome (the `outcome` label of `router_rtk_api_calls_total`). 429, 5xx,
time-outs and connection errors are worth another attempt; the wait is capped exponential
backoff with full jitter, never shorter than a `Retry-After` the server sent, and the attempts of
one call share a budget measured from its first attempt. Waits go through an injected `sleep`
and the budget through an injected `monotonic`, so tests run the whole schedule in no wall time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from router import clock
from router.backoff import Backoff
from router.errors import RtkApiError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]


_OUTCOMES = {404: "not_found", 409: "conflict", 401: "unauthorized", 403: "unauthorized"}


def outcome_of(status: int) -> str:
    """The metric outcome of an HTTP answer."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return _OUTCOMES.get(status, "client_error")


def is_retriable(status: int) -> bool:
    """Whether the same request may succeed later: RTK is busy or broken, not refusing it."""
    return status == 429 or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - clock.now()).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True)
class Failure:
    """A failed attempt that is worth repeating; `status` is None for a transport error."""

    call: str
    outcome: str
    status: int | None
    retry_after: float | None = None
    message: str = ""

    def describe(self) -> str:
        what = f"HTTP {self.status}" if self.status is not None else self.outcome.replace("_", " ")
        return f"{what}: {self.message}" if self.message else what


class Retrier:
    """Decides each wait of one client and gives up, raising `RtkApiError`, when the budget
    of a call cannot cover the next one."""

    def __init__(
        self,
        *,
        budget: float,
        base: float,
        cap: float,
        sleep: Sleep,
        monotonic: Monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.budget = budget
        self._backoff = Backoff(base, cap, jitter=True, rng=rng or random.Random())  # noqa: S311
        self._sleep = sleep
        self._monotonic = monotonic

    def deadline(self) -> float:
        """When a call starting now must stop retrying."""
        return self._monotonic() + self.budget

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))] for the n-th failure."""
        return self._backoff.delay(attempt)

    async def pause(self, failure: Failure, *, attempt: int, deadline: float) -> None:
        """Wait before attempt `attempt + 1`, or raise when the budget is spent."""
        remaining = deadline - self._monotonic()
        floor = failure.retry_after or 0.0
        if remaining <= 0 or floor > remaining:
            raise give_up(failure, attempts=attempt)
        delay = min(max(floor, self.backoff(attempt)), remaining)
        log.warning(
            "RTK call failed; retrying",
            extra={
                "call": failure.call,
                "attempt": attempt,
                "reason": failure.describe(),
                "wait_seconds": round(delay, 3),
            },
        )
        await self._sleep(delay)


def give_up(failure: Failure, *, attempts: int) -> RtkApiError:
    """The error a call raises once its retry budget is spent."""
    noun = "attempt" if attempts == 1 else "attempts"
    return RtkApiError(
        f"RTK {failure.call} failed after {attempts} {noun}: {failure.describe()}",
        status=failure.status,
        retriable=True,
        retry_after=failure.retry_after,
    )
