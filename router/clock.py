"""The one place that reads the wall clock; everything else is handed `now`."""

from __future__ import annotations

import datetime as dt
import functools
import time


def now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)  # noqa: TID251 - this module is the sanctioned clock


def wall_seconds() -> float:
    """Seconds since the epoch, for the few places that store plain timestamps."""
    return time.time()  # noqa: TID251 - this module is the sanctioned clock


def monotonic() -> float:
    """A clock for durations and deadlines; never goes back."""
    return time.monotonic()


def rfc3339_now() -> str:
    """The current time as `rfc3339` writes it, made from the epoch seconds (the form of the
    whole second is kept: it is the costly part, and a busy receiver asks many times a second).
    """
    moment = time.time()  # noqa: TID251 - this module is the sanctioned clock
    second = int(moment)
    return f"{_whole_second(second)}.{int((moment - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _whole_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


@functools.lru_cache(maxsize=1024)
def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a `Z`, as every topic carries it.

    Remembered: one event's receipt time is written in each of its records and their headers.
    (Aware datetimes that are the same instant are equal and hash alike, whatever their zone,
    and they have one UTC form.)"""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
