"""The commit position under out-of-order completion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.offsets import PartitionOffsets


@pytest.mark.parametrize(
    ("dispatched", "done", "position"),
    [
        ([], [], None),
        ([0, 1, 2], [], 0),
        ([0, 1, 2], [0], 1),
        ([0, 1, 2], [1, 2], 0),
        ([0, 1, 2], [1, 2, 0], 3),
        ([5, 6], [5, 6], 7),
        ([5, 9], [9], 5),
    ],
    ids=["nothing", "none-done", "first-done", "later-done", "all-done", "gap-start", "gap"],
)
def test_commit_position(dispatched: list[int], done: list[int], position: int | None) -> None:
    offsets = PartitionOffsets()
    for offset in dispatched:
        offsets.dispatched(offset)
    for offset in done:
        offsets.done(offset)
    assert offsets.commit_position() == position


def test_a_committed_position_is_not_offered_again() -> None:
    offsets = PartitionOffsets()
    offsets.dispatched(0)
    offsets.done(0)
    assert offsets.commit_position() == 1
    offsets.committed(1)
    assert offsets.commit_position() is None
    offsets.dispatched(1)
    assert offsets.commit_position() is None  # 1 is in flight: still nothing new
    offsets.done(1)
    assert offsets.commit_position() == 2


@given(st.permutations(list(range(30))), st.integers(min_value=0, max_value=30))
def test_never_commits_past_an_unfinished_offset(order: list[int], finished: int) -> None:
    offsets = PartitionOffsets()
    for offset in range(30):
        offsets.dispatched(offset)
    for offset in order[:finished]:
        offsets.done(offset)
    unfinished = set(range(30)) - set(order[:finished])
    position = offsets.commit_position()
    assert position is not None
    assert all(offset >= position for offset in unfinished)
    assert position == (min(unfinished) if unfinished else 30)
