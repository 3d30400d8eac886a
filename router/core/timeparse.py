"""The one lenient timestamp parser for RTK payloads, which mix ISO 8601 and `YYYY-MM-DD hh:mm:ss`.

RTK's meeting times look like `2026-06-03T10:00:00.000Z`, its recording times have been seen as
`2023-01-25 04:51:35.903816Z`; REST answers use `+00:00`. Everything becomes an aware UTC
`datetime`. A value that is not a timestamp becomes None rather than an error: a bad time is
never a reason to drop an event, whose own time is optional everywhere it is used.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

_TIMESTAMP = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    [Tt\x20]
    (?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})
    (?:\.(?P<fraction>\d{1,9}))?
    \x20?
    (?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?
    """,
    re.VERBOSE | re.ASCII,
)
# RFC 3339's date-time: a `T` (or, as its section 5.6 allows, a space) and a zone, always.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
# Longer than any timestamp with nanoseconds and an offset: nothing longer is worth matching.
_MAX_CHARS = 40


def parse_timestamp(value: object) -> dt.datetime | None:
    """An aware UTC datetime from an RTK timestamp string, or None for anything else.

    Accepts `T` or a space between date and time, any fraction up to nanoseconds (kept to the
    microsecond, truncated), and `Z`, `±hh:mm`, `±hhmm`, `±hh` or no zone at all (read as UTC,
    which is what RTK means). A datetime passes through, converted to UTC.
    """
    if isinstance(value, dt.datetime):
        return _as_utc(value)
    if not isinstance(value, str) or len(value) > _MAX_CHARS:
        return None
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> dt.datetime | None:
    """(Remembered: a meeting's `startedAt` comes back in every one of its events.)"""
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        zone = _zone(match["zone"])
        moment = dt.datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction),
            tzinfo=zone,
        )
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        # Impossible dates (February 30th, hour 24, offsets of a day or more) and instants
        # that leave the datetime range once moved to UTC.
        return None


def parse_rfc3339(value: str) -> dt.datetime | None:
    """An aware UTC datetime from an RFC 3339 date-time given by an operator (the zone is
    required), or None when it is not one."""
    if not _RFC3339.fullmatch(value):
        return None
    return parse_timestamp(value)


def _zone(text: str | None) -> dt.tzinfo:
    if text is None or text in ("Z", "z"):
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:] or "0")
    if minutes >= 60:
        raise ValueError("offset minutes out of range")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _as_utc(value: dt.datetime) -> dt.datetime | None:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return None
