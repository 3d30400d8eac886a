"""The recording status order: which statuses are published, and the topic's invariant that
published statuses only move forward whatever order RTK delivers them in."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.meeting_state import MeetingState
from router.core.recording_state import (
    ACTIVE,
    DROP_REASONS,
    STATUSES,
    TERMINAL,
    Verdict,
    is_active,
    judge,
)

PUBLISH = Verdict(publish=True)


def dropped(reason: str) -> Verdict:
    return Verdict(publish=False, reason=reason)


@pytest.mark.parametrize(
    ("current", "new", "verdict"),
    [
        pytest.param(None, "INVOKED", PUBLISH, id="first-invoked"),
        pytest.param(None, "UPLOADED", PUBLISH, id="first-is-late-uploaded"),
        pytest.param(None, "ERRORED", PUBLISH, id="first-errored"),
        pytest.param("INVOKED", "RECORDING", PUBLISH, id="invoked-recording"),
        pytest.param("INVOKED", "UPLOADED", PUBLISH, id="skip-ahead"),
        pytest.param("RECORDING", "PAUSED", PUBLISH, id="pause"),
        pytest.param("PAUSED", "RECORDING", PUBLISH, id="resume"),
        pytest.param("PAUSED", "UPLOADING", PUBLISH, id="paused-uploading"),
        pytest.param("UPLOADING", "UPLOADED", PUBLISH, id="uploading-uploaded"),
        pytest.param("INVOKED", "ERRORED", PUBLISH, id="invoked-errored"),
        pytest.param("PAUSED", "ERRORED", PUBLISH, id="paused-errored"),
        pytest.param("UPLOADING", "ERRORED", PUBLISH, id="uploading-errored"),
        pytest.param("RECORDING", "RECORDING", dropped("duplicate"), id="duplicate"),
        pytest.param("UPLOADED", "UPLOADED", dropped("duplicate"), id="duplicate-uploaded"),
        pytest.param("ERRORED", "ERRORED", dropped("duplicate"), id="duplicate-errored"),
        pytest.param("RECORDING", "INVOKED", dropped("regression"), id="recording-invoked"),
        pytest.param("UPLOADING", "PAUSED", dropped("regression"), id="uploading-paused"),
        pytest.param("UPLOADING", "RECORDING", dropped("regression"), id="uploading-recording"),
        pytest.param("UPLOADED", "UPLOADING", dropped("terminal"), id="after-uploaded"),
        pytest.param("UPLOADED", "ERRORED", dropped("terminal"), id="errored-after-uploaded"),
        pytest.param("ERRORED", "RECORDING", dropped("terminal"), id="after-errored"),
        pytest.param("ERRORED", "UPLOADED", dropped("terminal"), id="uploaded-after-errored"),
        pytest.param(None, "STOPPING", dropped("unknown_status"), id="unknown-first"),
        pytest.param("RECORDING", "recording", dropped("unknown_status"), id="lower-case-unknown"),
        pytest.param("RECORDING", "", dropped("unknown_status"), id="empty"),
        pytest.param("GARBAGE", "RECORDING", PUBLISH, id="unknown-current-ignored"),
    ],
)
def test_judge(current: str | None, new: str, verdict: Verdict) -> None:
    assert judge(current, new) == verdict
    assert verdict.reason is None or verdict.reason in DROP_REASONS


def publish_all(statuses: list[str]) -> list[tuple[str, str | None]]:
    """Run statuses of one recording through the meeting state: (published, previous) pairs."""
    state = MeetingState("m-1", session_id="s-1")
    published = []
    for status in statuses:
        state, verdict, previous = state.recording_status("r-1", status, "s-1")
        if verdict.publish:
            published.append((status, previous))
    return published


@pytest.mark.parametrize(
    ("delivered", "published"),
    [
        pytest.param(
            ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"],
            ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"],
            id="in-order",
        ),
        pytest.param(
            ["INVOKED", "INVOKED", "RECORDING", "RECORDING", "UPLOADING", "UPLOADED", "UPLOADED"],
            ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"],
            id="duplicated",
        ),
        pytest.param(
            ["UPLOADED", "UPLOADING", "RECORDING", "INVOKED"],
            ["UPLOADED"],
            id="reversed",
        ),
        pytest.param(
            ["RECORDING", "UPLOADING", "INVOKED", "UPLOADED", "RECORDING"],
            ["RECORDING", "UPLOADING", "UPLOADED"],
            id="late-invoked-and-recording",
        ),
        pytest.param(
            ["INVOKED", "UPLOADED", "UPLOADING"],
            ["INVOKED", "UPLOADED"],
            id="uploaded-overtakes-uploading",
        ),
        pytest.param(
            ["RECORDING", "PAUSED", "RECORDING", "PAUSED", "UPLOADING"],
            ["RECORDING", "PAUSED", "RECORDING", "PAUSED", "UPLOADING"],
            id="pause-resume",
        ),
        pytest.param(
            ["INVOKED", "ERRORED", "RECORDING", "UPLOADED", "ERRORED"],
            ["INVOKED", "ERRORED"],
            id="after-errored",
        ),
        pytest.param(
            ["RECORDING", "STOPPING", "UPLOADED"],
            ["RECORDING", "UPLOADED"],
            id="unknown-in-between",
        ),
    ],
)
def test_sequences(delivered: list[str], published: list[str]) -> None:
    result = publish_all(delivered)
    assert [status for status, _ in result] == published
    assert [previous for _, previous in result] == [None, *published[:-1]]


def test_active_and_terminal_sets() -> None:
    assert {"INVOKED", "RECORDING", "PAUSED"} == ACTIVE
    assert {"UPLOADED", "ERRORED"} == TERMINAL
    assert [is_active(status) for status in STATUSES] == [True, True, True, False, False, False]
    assert not is_active(None)


# The canonical order of the topic, written independently of the implementation.
_RANK = {"INVOKED": 0, "RECORDING": 1, "PAUSED": 1, "UPLOADING": 2, "UPLOADED": 3, "ERRORED": 4}


def _may_follow(previous: str, new: str) -> bool:
    if previous in ("UPLOADED", "ERRORED"):
        return False
    if _RANK[new] == _RANK[previous]:
        return new != previous  # RECORDING <-> PAUSED
    return _RANK[new] > _RANK[previous]


# A recording's life as RTK would report it, before duplication and shuffling.
_LIVES = st.lists(st.sampled_from(["RECORDING", "PAUSED"]), max_size=4).flatmap(
    lambda middle: st.sampled_from(
        [
            ["INVOKED", *middle, "UPLOADING", "UPLOADED"],
            ["INVOKED", *middle, "ERRORED"],
            [*middle, "UPLOADED"],
        ]
    )
)


# Every status of the life at least once, some repeated, in any order.
_DELIVERIES = _LIVES.flatmap(
    lambda life: st.lists(st.sampled_from(life), max_size=2 * len(life)).flatmap(
        lambda repeats: st.permutations(life + repeats)
    )
)


@given(delivered=_DELIVERIES | st.lists(st.sampled_from([*STATUSES, "STOPPING"]), max_size=20))
def test_published_statuses_only_advance(delivered: list[str]) -> None:
    result = publish_all(delivered)
    statuses = [status for status, _ in result]
    for previous, new in itertools.pairwise(statuses):
        assert _may_follow(previous, new), statuses
    assert [previous for _, previous in result] == [None, *statuses][: len(statuses)]
    assert all(status in STATUSES for status in statuses)
    if TERMINAL & set(delivered):
        # Whatever came late, the recording's end is always told.
        assert statuses[-1] in TERMINAL
