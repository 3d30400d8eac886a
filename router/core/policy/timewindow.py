"""`time:` conditions: parsing `{days, from, to, timezone}` and judging an event's own time
against them in that timezone.

A window with `from` after `to` wraps past midnight, and the hours after midnight belong to
the day the window opened on: `days: [fri], from: "22:00", to: "06:00"` holds on Saturday at
02:00 and not on Friday at 02:00. That is how people read a night shift, and it keeps a
wrapped window one interval per listed day. Times are minutes of the local wall clock, so a
window keeps its local hours across a DST change.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.core.policy.language import DAY_NAMES, Loc, Problem, TimeWindow

_KEYS = ("days", "from", "to", "timezone")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DAY_MINUTES = 24 * 60
UTC_ZONE = ZoneInfo("UTC")


def compile_time(raw: object, loc: Loc, problems: list[Problem]) -> TimeWindow | None:
    """The window `raw` describes, or `None` after adding its problems to `problems`."""
    if not isinstance(raw, Mapping):
        problems.append(Problem(loc, "expected a map with days, from, to, timezone", raw))
        return None
    before = len(problems)
    problems.extend(
        Problem(loc, f"unknown time key '{key}'", raw) for key in raw if key not in _KEYS
    )
    if not any(key in raw for key in ("days", "from", "to")):
        problems.append(Problem(loc, "expected at least one of days, from, to", raw))
    days = _days(raw["days"], (*loc, "days"), problems) if "days" in raw else None
    start = _clock(raw["from"], (*loc, "from"), problems) if "from" in raw else None
    end = _clock(raw["to"], (*loc, "to"), problems, end=True) if "to" in raw else None
    zone = _zone(raw["timezone"], (*loc, "timezone"), problems) if "timezone" in raw else UTC_ZONE
    if (start or 0) == (_DAY_MINUTES if end is None else end) and len(problems) == before:
        problems.append(Problem((*loc, "to"), "the window is empty: from and to are equal", raw))
    if len(problems) > before or zone is None:
        return None
    return TimeWindow(days=days, start=start, end=end, zone=zone)


def judge_time(window: TimeWindow, moment: dt.datetime) -> tuple[bool, str]:
    """Whether `moment` falls in the window, and the reason shown in traces."""
    local = local_time(moment, window.zone)
    if local is None:
        return False, f"time {moment.isoformat()} cannot be shown in {window.zone.key}: no"
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    start = window.start or 0
    end = _DAY_MINUTES if window.end is None else window.end
    if start < end:
        in_hours = start <= minute < end
    elif minute >= start:
        in_hours = True
    else:
        in_hours = minute < end
        day = (day - 1) % 7  # the early hours of a wrapped window belong to the day before
    held = in_hours and (window.days is None or day in window.days)
    shown = f"{local:%a %Y-%m-%d %H:%M} {window.zone.key}"
    return held, f"time {shown} within {describe_window(window)}: {'yes' if held else 'no'}"


def local_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """`moment` in `zone` (a naive one read as UTC), or `None` at the ends of the calendar."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    try:
        return aware.astimezone(zone)
    except (OverflowError, ValueError):
        return None


def describe_window(window: TimeWindow) -> str:
    """The days and hours of the window as written, e.g. `mon,tue 08:00-18:00`."""
    parts = []
    if window.days is not None:
        parts.append(",".join(DAY_NAMES[day] for day in sorted(window.days)))
    if window.start is not None or window.end is not None:
        end = _DAY_MINUTES if window.end is None else window.end
        parts.append(f"{_hhmm(window.start or 0)}-{_hhmm(end)}")
    return " ".join(parts)


def _days(raw: object, loc: Loc, problems: list[Problem]) -> frozenset[int] | None:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(loc, f"expected a non-empty list of {', '.join(DAY_NAMES)}", raw))
        return None
    days = set()
    for index, item in enumerate(raw):
        name = item.lower() if isinstance(item, str) else None
        if name not in DAY_NAMES:
            problems.append(
                Problem((*loc, index), f"unknown day {item!r}; use {', '.join(DAY_NAMES)}", item)
            )
            continue
        days.add(DAY_NAMES.index(name))
    return frozenset(days)


def _clock(raw: object, loc: Loc, problems: list[Problem], *, end: bool = False) -> int | None:
    if end and raw == "24:00":
        return _DAY_MINUTES
    match = _CLOCK.match(raw) if isinstance(raw, str) else None
    if match is None:
        # Unquoted 18:00 is a base-60 number in YAML 1.1, hence the hint.
        hint = " (quote it in YAML)" if isinstance(raw, int) and not isinstance(raw, bool) else ""
        problems.append(Problem(loc, f'expected "HH:MM" from 00:00 to 23:59{hint}', raw))
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def _zone(raw: object, loc: Loc, problems: list[Problem]) -> ZoneInfo | None:
    if isinstance(raw, str) and raw:
        try:
            return ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    problems.append(Problem(loc, f"unknown timezone {raw!r}; use an IANA name", raw))
    return None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
