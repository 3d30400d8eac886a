"""The reconciliation schedule on a fake clock: rounds spread over the interval, calls paced
under the budget however many meetings are live, a pause honoured, meetings dropped."""

from __future__ import annotations

from collections import Counter

import pytest

from router.core.reconcile_schedule import CallPacer, RoundSchedule


def simulate(
    meetings: int, *, interval: float, per_minute: int, seconds: float, calls_per_round: int = 1
) -> list[tuple[float, str]]:
    """Drive schedule and pacer as the reconciler does, jumping the clock to the next thing
    that can happen; the (time, meeting) of every call."""
    schedule = RoundSchedule(interval)
    pacer = CallPacer(per_minute)
    now = 0.0
    schedule.watch([f"m-{n}" for n in range(meetings)], now)
    made: list[tuple[float, str]] = []
    while now < seconds:
        due = schedule.next_due()
        assert due is not None
        now = max(now, due)
        meeting = schedule.pop_due(now)
        assert meeting is not None
        for _ in range(calls_per_round):
            now = pacer.next_at(now)
            assert pacer.take(now)
            made.append((now, meeting))
    return [(t, m) for t, m in made if t < seconds]


def most_in_any_window(times: list[float], width: float) -> int:
    """The largest number of `times` in any half-open window [t, t + width)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - width:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("calls_per_round", [1, 3], ids=["sessions", "with-recordings"])
def test_2000_live_meetings_stay_under_the_budget(calls_per_round: int) -> None:
    made = simulate(2000, interval=60, per_minute=120, seconds=900, calls_per_round=calls_per_round)

    assert most_in_any_window([t for t, _ in made], 60.0) <= 120
    # The budget is used, not wasted: every paced slot of the 15 minutes was taken.
    assert len(made) >= 120 * 15 - 1


def test_a_backlog_is_served_in_turn() -> None:
    made = simulate(2000, interval=60, per_minute=120, seconds=1000)

    checked = Counter(m for _, m in made)
    # 2,000 rounds at 2 a second take 1,000 s: every meeting had its turn, none had two.
    assert len(checked) == 2000
    assert max(checked.values()) == 1


def test_rounds_are_spread_over_the_interval() -> None:
    made = simulate(100, interval=60, per_minute=6000, seconds=60)

    assert sorted(m for _, m in made) == sorted(f"m-{n}" for n in range(100))
    # 100 rounds in 60 s: not a burst at the start, but a few every few seconds.
    assert most_in_any_window([t for t, _ in made], 5.0) <= 25
    assert min(t for t, _ in made) < 5.0 < max(t for t, _ in made) > 50.0


def test_each_meeting_comes_round_once_an_interval() -> None:
    made = simulate(10, interval=2, per_minute=6000, seconds=20.5)

    rounds = Counter(m for _, m in made)
    assert set(rounds.values()) <= {10, 11}


def test_the_pacer_spaces_calls_evenly() -> None:
    pacer = CallPacer(120)

    assert pacer.take(10.0)
    assert not pacer.take(10.2)
    assert pacer.next_at(10.2) == 10.5
    assert pacer.take(10.5)


def test_a_pause_holds_every_call() -> None:
    pacer = CallPacer(120)
    pacer.pause_until(30.0)

    assert not pacer.take(29.9)
    assert pacer.next_at(12.0) == 30.0
    assert pacer.take(30.0)


def test_meetings_no_longer_watched_are_dropped() -> None:
    schedule = RoundSchedule(10)
    schedule.watch(["a", "b"], 0.0)
    schedule.watch(["b"], 1.0)

    popped = [schedule.pop_due(100.0), schedule.pop_due(100.0)]

    assert "a" not in schedule
    assert popped == ["b", None]


def test_the_offset_is_the_meetings_own() -> None:
    one, other = RoundSchedule(60), RoundSchedule(60)
    one.watch(["m-1"], 0.0)
    other.watch(["m-0", "m-1"], 0.0)

    assert one.offset("m-1") == other.offset("m-1")
    assert 0 <= one.offset("m-1") < 60
