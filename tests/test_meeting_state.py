"""The per-meeting state: sessions, peers as a set, the known recordings, replay keys, and the
JSON form it is persisted in."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.meeting_state import (
    MAX_PAST_SESSIONS,
    MAX_RECORDINGS,
    MAX_SEEN,
    STATE_VERSION,
    KnownRecording,
    MeetingState,
)

Step = Callable[[MeetingState], MeetingState]


def fresh() -> MeetingState:
    return MeetingState("m-1")


def run(*steps: Step, state: MeetingState | None = None) -> MeetingState:
    state = state or fresh().enter_session("s-1", title="Weekly sync", organization_id="org-1")
    for step in steps:
        state = step(state)
    return state


def join(peer: str, custom: str | None = None, session: str | None = None) -> Step:
    return lambda s: s.joined(peer, custom, session_id=session)


def leave(peer: str, session: str | None = None) -> Step:
    return lambda s: s.left(peer, session_id=session)


def enter(session: str | None) -> Step:
    return lambda s: s.enter_session(session)


def started(session: str | None) -> Step:
    return lambda s: s.started(session)


def ended(session: str | None) -> Step:
    return lambda s: s.ended(session)


def recording(rid: str, status: str, session: str | None = "s-1") -> Step:
    return lambda s: s.recording_status(rid, status, session).state


def router_started(rid: str, status: str = "INVOKED", session: str | None = "s-1") -> Step:
    return lambda s: s.recording_started_by_router(rid, status, session).state


@pytest.mark.parametrize(
    ("steps", "present", "distinct"),
    [
        pytest.param([], 0, 0, id="nobody"),
        pytest.param([join("p1", "u1")], 1, 1, id="one"),
        pytest.param([join("p1", "u1"), join("p1", "u1")], 1, 1, id="same-join-twice"),
        pytest.param([join("p1", "u1"), join("p2", "u1")], 2, 1, id="one-person-two-devices"),
        pytest.param([join("p1"), join("p2")], 2, 0, id="no-custom-ids"),
        pytest.param([join("p1", "u1"), join("p1")], 1, 1, id="rejoin-keeps-custom-id"),
        pytest.param([join("p1", "u1"), leave("p1")], 0, 0, id="join-leave"),
        pytest.param([leave("p1")], 0, 0, id="leave-unknown"),
        pytest.param([join("p1", "u1"), leave("p1"), leave("p1")], 0, 0, id="leave-twice"),
        pytest.param([leave("p1"), join("p1", "u1")], 1, 1, id="leave-before-join"),
        pytest.param([join("p1", "u1"), started("s-1")], 1, 1, id="started-keeps-count"),
        pytest.param([join("p1", "u1"), started("s-2")], 0, 0, id="started-new-session"),
        pytest.param([join("p1", "u1"), join("p2", "u2"), ended("s-1")], 0, 0, id="ended"),
        pytest.param(
            [join("p1", "u1"), ended("s-1"), join("p2", "u2", "s-1")], 0, 0, id="late-join"
        ),
        pytest.param(
            [join("p1", "u1"), ended("s-1"), join("p2", "u2")], 0, 0, id="late-join-no-id"
        ),
        pytest.param(
            [join("p1", "u1"), enter("s-2"), join("p2", "u2", "s-2")], 1, 1, id="new-session"
        ),
        pytest.param(
            [enter("s-2"), join("p2", "u2", "s-2"), join("p1", "u1", "s-1")],
            1,
            1,
            id="join-of-superseded-session",
        ),
        pytest.param(
            [enter("s-2"), join("p2", "u2", "s-2"), leave("p2", "s-1")],
            1,
            1,
            id="leave-of-superseded-session",
        ),
        pytest.param(
            [enter("s-2"), join("p2", "u2", "s-2"), ended("s-1")],
            1,
            1,
            id="late-end-of-earlier-session",
        ),
        pytest.param(
            [enter("s-2"), join("p2", "u2"), enter("s-1"), join("p3", "u3")],
            2,
            2,
            id="earlier-session-does-not-come-back",
        ),
    ],
)
def test_participants(steps: list[Step], present: int, distinct: int) -> None:
    state = run(*steps)
    assert state.participants_present == present
    assert state.distinct_participants == distinct


@pytest.mark.parametrize(
    ("steps", "session"),
    [
        pytest.param([], "s-1", id="first"),
        pytest.param([enter(None)], "s-1", id="none-keeps"),
        pytest.param([enter("s-2")], "s-2", id="new"),
        pytest.param([enter("s-2"), enter("s-1")], "s-2", id="no-going-back"),
        pytest.param([ended("s-1")], "s-1", id="ended-keeps-id"),
        pytest.param([ended("s-1"), started("s-2")], "s-2", id="next-session"),
    ],
)
def test_sessions(steps: list[Step], session: str) -> None:
    assert run(*steps).session_id == session


def test_first_session_adopts_what_was_known() -> None:
    state = fresh().joined("p1", "u1").enter_session("s-1")
    assert (state.session_id, state.participants_present) == ("s-1", 1)


def test_meeting_facts_are_kept_when_an_event_lacks_them() -> None:
    state = run(lambda s: s.enter_session("s-1", title=None, organization_id=None))
    assert (state.title, state.organization_id) == ("Weekly sync", "org-1")
    state = state.enter_session("s-1", title="Renamed")
    assert state.title == "Renamed"


@pytest.mark.parametrize(
    ("steps", "active", "session_recording"),
    [
        pytest.param([], None, None, id="none"),
        pytest.param(
            [recording("r1", "RECORDING")],
            KnownRecording("r1", "RECORDING", "s-1", started_by_router=False),
            "r1",
            id="seen-by-webhook",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), recording("r1", "PAUSED")],
            KnownRecording("r1", "PAUSED", "s-1"),
            "r1",
            id="paused-still-active",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), recording("r1", "UPLOADING")],
            None,
            "r1",
            id="stopped-but-still-the-sessions",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), recording("r1", "INVOKED")],
            KnownRecording("r1", "RECORDING", "s-1"),
            "r1",
            id="regression-changes-nothing",
        ),
        pytest.param(
            [router_started("r1")],
            KnownRecording("r1", "INVOKED", "s-1", started_by_router=True),
            "r1",
            id="started-by-router",
        ),
        pytest.param(
            [router_started("r1"), recording("r1", "RECORDING")],
            KnownRecording("r1", "RECORDING", "s-1", started_by_router=True),
            "r1",
            id="router-started-then-webhook",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), router_started("r1", "INVOKED")],
            KnownRecording("r1", "RECORDING", "s-1", started_by_router=True),
            "r1",
            id="webhook-overtook-the-api-answer",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), enter("s-2")],
            None,
            None,
            id="new-session-forgets-old-recording",
        ),
        pytest.param(
            [enter("s-2"), recording("r0", "RECORDING", "s-1")],
            None,
            None,
            id="late-status-of-earlier-session",
        ),
        pytest.param(
            [enter("s-2"), recording("r2", "RECORDING", None)],
            KnownRecording("r2", "RECORDING", "s-2"),
            "r2",
            id="no-session-means-current",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), recording("r2", "UPLOADED")],
            KnownRecording("r1", "RECORDING", "s-1"),
            "r1",
            id="other-recording-ends",
        ),
        pytest.param(
            [recording("r1", "RECORDING"), recording("r2", "RECORDING")],
            KnownRecording("r2", "RECORDING", "s-1"),
            "r1",
            id="second-recording-is-the-active-one",
        ),
    ],
)
def test_recordings(
    steps: list[Step], active: KnownRecording | None, session_recording: str | None
) -> None:
    state = run(*steps)
    assert state.active_recording == active
    assert state.active_status == (active.status if active else None)
    assert state.session_recording_id == session_recording


def test_recording_status_returns_verdict_and_previous_status() -> None:
    state = run()
    state, verdict, previous = state.recording_status("r1", "RECORDING", "s-1")
    assert (verdict.publish, previous) == (True, None)
    state, verdict, previous = state.recording_status("r1", "UPLOADED", "s-1")
    assert (verdict.publish, previous) == (True, "RECORDING")
    after, verdict, previous = state.recording_status("r1", "UPLOADING", "s-1")
    assert (verdict.publish, verdict.reason, previous) == (False, "terminal", "UPLOADED")
    assert after is state


def test_recordings_are_bounded_oldest_first() -> None:
    state = run(*(recording(f"r{i}", "UPLOADED") for i in range(MAX_RECORDINGS + 5)))
    assert len(state.recordings) == MAX_RECORDINGS
    assert next(iter(state.recordings)) == "r5"
    # A recording that was forgotten is news again; a remembered one is not.
    assert state.recording_status("r0", "UPLOADED").verdict.publish
    assert not state.recording_status("r5", "UPLOADED").verdict.publish


def test_seen_keys_are_bounded_and_counted_once() -> None:
    state = fresh()
    for i in range(MAX_SEEN + 10):
        state = state.mark_seen(f"k{i}")
    assert len(state.seen) == MAX_SEEN
    assert not state.has_seen("k9")
    assert state.has_seen("k10")
    assert state.has_seen(f"k{MAX_SEEN + 9}")
    assert state.mark_seen("k10") is state


def test_past_sessions_are_bounded() -> None:
    state = run(*(enter(f"s-{i}") for i in range(2, MAX_PAST_SESSIONS + 10)))
    assert len(state.past_sessions) == MAX_PAST_SESSIONS


def test_state_is_immutable() -> None:
    peers = {"p1": "u1"}
    state = MeetingState("m-1", peers=peers)
    peers["p2"] = "u2"
    assert state.participants_present == 1
    with pytest.raises(TypeError):
        state.peers["p3"] = None  # type: ignore[index]


# ---- JSON


def busy_state() -> MeetingState:
    return run(
        join("p1", "u1"),
        join("p2", None),
        router_started("r1"),
        recording("r1", "RECORDING"),
        recording("r0", "UPLOADED"),
        lambda s: s.mark_seen("d-1").mark_seen("d-2"),
        enter("s-2"),
        join("p3", "ü-3"),
    )


def test_json_round_trip() -> None:
    state = busy_state()
    data = state.to_json()
    assert MeetingState.from_json(data) == state
    assert b" " not in data.replace(b"Weekly sync", b"")
    doc = json.loads(data)
    assert doc["version"] == STATE_VERSION
    assert doc["meeting_id"] == "m-1"
    assert "ü-3" in data.decode()


def test_json_of_a_fresh_state() -> None:
    assert MeetingState.from_json(fresh().to_json()) == fresh()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({"meeting_id": "m-1"}, MeetingState("m-1"), id="only-id"),
        pytest.param(
            {"version": 99, "meeting_id": "m-1", "session_id": "s-1", "future": [1]},
            MeetingState("m-1", session_id="s-1"),
            id="newer-version-extra-fields",
        ),
        pytest.param(
            {
                "meeting_id": "m-1",
                "session_id": 5,
                "peers": {"p1": "u1", "p2": 3, "p3": None},
                "recordings": {"r1": "UPLOADED", "r2": None},
                "seen": ["a", 1, "", "b"],
                "past_sessions": "s-0",
                "active_recording": {"id": "r9", "status": None},
            },
            MeetingState(
                "m-1",
                peers={"p1": "u1", "p2": None, "p3": None},
                recordings={"r1": "UPLOADED"},
                seen=("a", "b"),
            ),
            id="wrong-types-are-dropped",
        ),
        pytest.param(
            {
                "meeting_id": "m-1",
                "active_recording": {"id": "r1", "status": "RECORDING", "started_by_router": 1},
            },
            MeetingState("m-1", active_recording=KnownRecording("r1", "RECORDING", None, False)),
            id="only-true-is-true",
        ),
    ],
)
def test_from_json_is_tolerant(doc: dict[str, object], expected: MeetingState) -> None:
    assert MeetingState.from_json(json.dumps(doc).encode()) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[1, 2]", id="list"),
        pytest.param(b'{"session_id": "s-1"}', id="no-meeting-id"),
        pytest.param(b'{"meeting_id": 7}', id="meeting-id-number"),
    ],
)
def test_from_json_refuses_what_is_not_a_state(data: bytes) -> None:
    with pytest.raises(ValueError, match="meeting state"):
        MeetingState.from_json(data)


_IDS = st.sampled_from(["a", "b", "c", "d"])
_STEPS = st.one_of(
    st.builds(join, _IDS, st.none() | _IDS, st.none() | st.sampled_from(["s-1", "s-2", "s-3"])),
    st.builds(leave, _IDS, st.none() | st.sampled_from(["s-1", "s-2"])),
    st.builds(enter, st.none() | st.sampled_from(["s-1", "s-2", "s-3"])),
    st.builds(ended, st.none() | st.sampled_from(["s-1", "s-2"])),
    st.builds(
        recording,
        _IDS,
        st.sampled_from(["INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED", "ERRORED"]),
        st.none() | st.sampled_from(["s-1", "s-2"]),
    ),
    st.builds(router_started, _IDS),
    st.builds(lambda key: lambda s: s.mark_seen(key), _IDS),
)


@given(st.lists(_STEPS, max_size=30))
def test_any_history_survives_a_restart(steps: list[Step]) -> None:
    state = run(*steps)
    assert MeetingState.from_json(state.to_json()) == state
    assert state.participants_present == len(state.peers)
    assert state.distinct_participants <= state.participants_present
    active = state.active_recording
    assert active is None or state.recordings[active.id] == active.status
    assert active is None or active.status in ("INVOKED", "RECORDING", "PAUSED")


def test_a_session_is_over_only_once_ended_empty_and_without_an_active_recording() -> None:
    state = MeetingState("m").started("s1").joined("p1", "c1", session_id="s1")
    assert not state.is_over
    assert state.left("p1", session_id="s1").is_over is False  # left, but not ended
    assert state.ended("s1").is_over
    assert not MeetingState("m").is_over  # no session yet
    recording = state.recording_started_by_router("r1", "RECORDING", "s1").state
    assert not recording.ended("s1").is_over  # its recording is still to be followed
    done = recording.ended("s1").recording_status("r1", "UPLOADED", "s1").state
    assert done.is_over
