"""`time:` windows: days, hours, windows over midnight, and timezones across DST changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.plugins.policy import make_input, policy_of, rule


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _case(case_id: str, window: dict[str, Any], at: str, expected: bool) -> Any:
    return pytest.param(window, _utc(at), expected, id=case_id)


WORK = {"from": "08:00", "to": "18:00"}
NIGHT = {"from": "22:00", "to": "06:00"}
BERLIN = {"timezone": "Europe/Berlin"}
NEW_YORK = {"timezone": "America/New_York"}
KOLKATA = {"from": "09:00", "to": "10:00", "timezone": "Asia/Kolkata"}
BERLIN_8_TO_9 = {"from": "08:00", "to": "09:00", **BERLIN}
BERLIN_GAP = {"from": "02:00", "to": "03:00", **BERLIN}
NEW_YORK_DAY = {"from": "09:00", "to": "17:00", **NEW_YORK}
NEW_YORK_REPEATED = {"from": "01:00", "to": "02:00", **NEW_YORK}
OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], **WORK, **BERLIN}

# 2026-06-03 is a Wednesday. Berlin leaves CET for CEST on 2026-03-29 at 01:00 UTC;
# New York leaves EDT for EST on 2026-11-01 at 06:00 UTC.
CASES = [
    _case("day-listed", {"days": ["wed"]}, "2026-06-03T12:00", True),
    _case("day-not-listed", {"days": ["sat", "sun"]}, "2026-06-03T12:00", False),
    _case("day-upper-case", {"days": ["WED"]}, "2026-06-03T12:00", True),
    _case("day-in-timezone", {"days": ["thu"], **BERLIN}, "2026-06-03T23:30", True),
    _case("day-in-utc", {"days": ["thu"]}, "2026-06-03T23:30", False),
    _case("hours-inside", WORK, "2026-06-03T12:00", True),
    _case("hours-from-inclusive", WORK, "2026-06-03T08:00", True),
    _case("hours-before", WORK, "2026-06-03T07:59:59", False),
    _case("hours-last-second", WORK, "2026-06-03T17:59:59", True),
    _case("hours-to-exclusive", WORK, "2026-06-03T18:00", False),
    _case("from-only-inside", {"from": "12:00"}, "2026-06-03T23:59", True),
    _case("from-only-before", {"from": "12:00"}, "2026-06-03T11:59", False),
    _case("to-only-inside", {"to": "12:00"}, "2026-06-03T00:00", True),
    _case("to-only-after", {"to": "12:00"}, "2026-06-03T12:00", False),
    _case("to-end-of-day", {"from": "22:00", "to": "24:00"}, "2026-06-03T23:59", True),
    _case("to-end-of-day-before", {"from": "22:00", "to": "24:00"}, "2026-06-03T21:59", False),
    _case("wrap-evening", NIGHT, "2026-06-03T23:00", True),
    _case("wrap-midnight", NIGHT, "2026-06-04T00:00", True),
    _case("wrap-early", NIGHT, "2026-06-04T05:59", True),
    _case("wrap-end-exclusive", NIGHT, "2026-06-04T06:00", False),
    _case("wrap-day", NIGHT, "2026-06-03T12:00", False),
    _case("wrap-just-before", NIGHT, "2026-06-03T21:59", False),
    _case("wrap-friday-night", {"days": ["fri"], **NIGHT}, "2026-06-05T23:00", True),
    _case("wrap-into-saturday", {"days": ["fri"], **NIGHT}, "2026-06-06T02:00", True),
    _case("wrap-friday-early", {"days": ["fri"], **NIGHT}, "2026-06-05T02:00", False),
    _case("wrap-saturday-night", {"days": ["fri"], **NIGHT}, "2026-06-06T23:00", False),
    _case("wrap-sunday-into-monday", {"days": ["sun"], **NIGHT}, "2026-06-08T01:00", True),
    _case("berlin-summer-inside", {**WORK, **BERLIN}, "2026-06-03T06:30", True),
    _case("berlin-summer-after", {**WORK, **BERLIN}, "2026-06-03T16:30", False),
    _case("kolkata-half-hour", KOLKATA, "2026-06-03T03:45", True),
    _case("kolkata-before", KOLKATA, "2026-06-03T03:15", False),
    _case("dst-berlin-cet-inside", BERLIN_8_TO_9, "2026-03-28T07:30", True),
    _case("dst-berlin-cet-outside", BERLIN_8_TO_9, "2026-03-28T06:30", False),
    _case("dst-berlin-cest-inside", BERLIN_8_TO_9, "2026-03-29T06:30", True),
    _case("dst-berlin-cest-outside", BERLIN_8_TO_9, "2026-03-29T07:30", False),
    _case("dst-gap-before", BERLIN_GAP, "2026-03-29T00:59", False),
    _case("dst-gap-after", BERLIN_GAP, "2026-03-29T01:00", False),
    _case("dst-new-york-edt", NEW_YORK_DAY, "2026-10-31T13:30", True),
    _case("dst-new-york-est-early", NEW_YORK_DAY, "2026-11-02T13:30", False),
    _case("dst-new-york-est", NEW_YORK_DAY, "2026-11-02T14:30", True),
    _case("dst-repeated-hour", NEW_YORK_REPEATED, "2026-11-01T06:30", True),
    _case("dst-repeated-hour-first", NEW_YORK_REPEATED, "2026-11-01T05:30", True),
    _case("days-and-hours", OFFICE, "2026-06-03T10:05", True),
    _case("days-and-hours-weekend", OFFICE, "2026-06-06T10:05", False),
]  # fmt: skip


@pytest.mark.parametrize(("window", "at", "expected"), CASES)
def test_time_windows(window: dict[str, Any], at: dt.datetime, expected: bool) -> None:
    evaluation = policy_of(rule(when={"time": window})).evaluate(make_input(event_time=at))
    assert evaluation.trace[0].matched is expected, evaluation.trace[0].reasons


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(dt.datetime(2026, 6, 3, 12, 30), True, id="naive-read-as-utc"),
        pytest.param(
            dt.datetime(2026, 6, 3, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
            False,
            id="offset-converted",
        ),
    ],
)
def test_event_time_is_converted(at: dt.datetime, expected: bool) -> None:
    policy = policy_of(rule(when={"time": {"from": "12:00", "to": "13:00"}}))
    assert policy.evaluate(make_input(event_time=at)).trace[0].matched is expected


@pytest.mark.parametrize(
    "at",
    [
        pytest.param(dt.datetime.max.replace(tzinfo=dt.UTC), id="max"),
        pytest.param(dt.datetime.min.replace(tzinfo=dt.UTC), id="min"),
        pytest.param(
            dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))), id="min-ahead"
        ),
    ],
)
def test_ends_of_the_calendar_do_not_raise(at: dt.datetime) -> None:
    policy = policy_of(
        rule(
            when={"time": {"from": "08:00", "timezone": "Pacific/Kiritimati"}},
            recording={"file_name_prefix": "{date}"},
        ),
        rule("fallback", recording={"file_name_prefix": "x-{date}"}),
    )
    evaluation = policy.evaluate(make_input(event_time=at))
    assert evaluation.rule in ("r", "fallback")


def test_reason_shows_local_time() -> None:
    evaluation = policy_of(rule(when={"time": OFFICE})).evaluate(
        make_input(event_time=_utc("2026-06-03T10:05"))
    )
    assert evaluation.trace[0].reasons == (
        "time Wed 2026-06-03 12:05 Europe/Berlin within mon,tue,wed,thu,fri 08:00-18:00: yes",
    )
