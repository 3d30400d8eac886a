"""The per-meeting state: sessions, peers as a set, the known recordings, replay keys, and the
JSON form it is persisted in."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.meeting_state import (
    MAX_PAST_SESSIONS,
    MAX_RECORDINGS,
    MAX_SEEN_BYTES,
    SEEN_DIGEST_BYTES,
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


# ---- deliveries already processed


def body_key(i: int, meeting: str = "m-1") -> str:
    """A delivery key as the worker makes it: the first 128 bits of the body's SHA-256."""
    body = json.dumps({"event": "meeting.participantJoined", "meeting": meeting, "n": i})
    return "b:" + hashlib.sha256(body.encode()).hexdigest()[:32]


def mark(state: MeetingState, keys: range, meeting: str = "m-1") -> MeetingState:
    for i in keys:
        state = state.mark_seen(body_key(i, meeting))
    return state


CAPACITY = MAX_SEEN_BYTES // SEEN_DIGEST_BYTES


def test_the_budget_is_whole_digests() -> None:
    assert MAX_SEEN_BYTES % SEEN_DIGEST_BYTES == 0
    assert CAPACITY == 4096


@pytest.mark.parametrize("others", [300, 3000])
def test_a_retry_after_many_other_events_of_the_meeting_is_recognised(others: int) -> None:
    state = run(join("p1", "u1"))
    state = state.mark_seen(body_key(0))
    state = mark(run(join("p2", "u2"), state=state), range(1, others + 1))
    assert state.has_seen(body_key(0))
    assert state.mark_seen(body_key(0)) is state
    assert not state.has_seen(body_key(0, meeting="m-2"))
    # ... and after a restart too.
    assert MeetingState.from_json(state.to_json()).has_seen(body_key(0))


def test_seen_keys_are_counted_once() -> None:
    state = fresh().mark_seen("k1").mark_seen("k2")
    assert state.mark_seen("k1") is state
    assert (state.seen_count, len(state.seen)) == (2, 2 * SEEN_DIGEST_BYTES)
    assert state.has_seen("k2")
    assert not state.has_seen("k3")


def test_the_budget_bounds_the_bytes_and_counts_what_it_drops() -> None:
    state = mark(fresh(), range(CAPACITY + 10))
    assert len(state.seen) == MAX_SEEN_BYTES
    assert state.seen_dropped == 10
    assert not state.has_seen(body_key(9))  # the oldest went first
    assert state.has_seen(body_key(10))
    assert state.has_seen(body_key(CAPACITY + 9))
    data = state.to_json()
    assert len(data) <= MAX_SEEN_BYTES * 4 // 3 + 400
    restored = MeetingState.from_json(data)
    assert restored == state
    assert restored.seen_dropped == 10


def test_the_state_json_stays_small() -> None:
    empty = len(run().to_json())
    assert len(mark(run(), range(300)).to_json()) - empty <= 300 * 22 + 2
    assert len(mark(run(), range(4000)).to_json()) - empty <= 4000 * 22 + 2


def test_a_new_session_keeps_the_previous_sessions_deliveries_and_forgets_the_one_before() -> None:
    state = mark(run(), range(0, 100))  # s-1
    state = mark(state.enter_session("s-2"), range(100, 200))
    assert state.seen_previous == 100
    assert state.has_seen(body_key(0))
    assert state.has_seen(body_key(150))
    # A late event of s-1, retried while s-2 is live, is still recognised.
    assert state.enter_session("s-1").has_seen(body_key(99))
    # Its late events are remembered with the current session's.
    state = state.mark_seen(body_key(1000))
    state = mark(state.enter_session("s-3"), range(200, 210))
    assert not state.has_seen(body_key(0))  # s-1's: forgotten
    assert state.has_seen(body_key(100))
    assert state.has_seen(body_key(1000))
    assert (state.seen_count, state.seen_previous, state.seen_dropped) == (111, 101, 0)
    # The same session again, or a past one, forgets nothing.
    assert state.enter_session("s-3").seen == state.seen
    assert state.enter_session("s-2").seen == state.seen
    assert state.ended("s-3").seen == state.seen


def test_the_first_session_keeps_what_was_seen_before_it() -> None:
    state = fresh().mark_seen("k1").enter_session("s-1")
    assert state.has_seen("k1")
    assert state.seen_previous == 0


def test_the_budget_takes_the_previous_session_first() -> None:
    state = mark(run(), range(100)).enter_session("s-2")
    state = mark(state, range(100, CAPACITY + 40))
    assert (state.seen_previous, state.seen_dropped) == (60, 40)
    assert not state.has_seen(body_key(39))
    assert state.has_seen(body_key(40))
    state = mark(state, range(CAPACITY + 40, CAPACITY + 140))
    assert (state.seen_previous, state.seen_dropped) == (0, 140)
    assert state.has_seen(body_key(140))
    assert not state.has_seen(body_key(139))


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda key: "b:" + key[2:].upper(), id="upper-case"),
        pytest.param(lambda key: key + "0" * 32, id="longer-digest"),
    ],
)
def test_body_keys_are_remembered_by_their_first_128_bits(other: Callable[[str], str]) -> None:
    key = body_key(1)
    assert fresh().mark_seen(key).has_seen(other(key))
    assert fresh().mark_seen(key).seen == bytes.fromhex(key[2:])


@pytest.mark.parametrize("key", ["", "b:", "b:" + "zz" * 16, "b:" + "a " * 16, "ü", "\udc80"])
def test_any_other_key_is_remembered_too(key: str) -> None:
    state = fresh().mark_seen(key)
    assert state.has_seen(key)
    assert len(state.seen) == SEEN_DIGEST_BYTES
    assert not state.has_seen(key + "x")


def test_a_match_across_two_digests_is_no_match() -> None:
    a, b = bytes(range(16)), bytes(range(16, 32))
    state = MeetingState("m-1", seen=a + b)
    straddling = "b:" + (a[8:] + b[:8]).hex()
    assert not state.has_seen(straddling)
    assert state.has_seen("b:" + b.hex())
    state = MeetingState("m-1", seen=a + b + a[8:] + b[:8])  # a misaligned match comes first
    assert state.has_seen(straddling)


def test_the_json_form_written_before_still_restores() -> None:
    old_keys = [body_key(i) for i in range(256)]
    doc = {
        "version": 1,
        "meeting_id": "m-1",
        "session_id": "s-1",
        "peers": {},
        "recordings": {},
        "past_sessions": [],
        "seen": old_keys,
    }
    state = MeetingState.from_json(json.dumps(doc).encode())
    assert all(state.has_seen(key) for key in old_keys)
    assert (state.seen_count, state.seen_previous, state.seen_dropped) == (256, 0, 0)
    assert state.seen == b"".join(bytes.fromhex(key[2:]) for key in old_keys)
    assert MeetingState.from_json(state.to_json()) == state
    # Its deliveries belong to the session they were seen in, which the next one keeps.
    assert state.enter_session("s-2").has_seen(old_keys[0])


@pytest.mark.parametrize(
    ("seen", "extra", "count", "previous"),
    [
        pytest.param("not base64!", {}, 0, 0, id="not-base64"),
        pytest.param("ü", {}, 0, 0, id="not-ascii"),
        pytest.param(7, {}, 0, 0, id="a-number"),
        pytest.param(base64.b64encode(bytes(40)).decode(), {}, 2, 0, id="a-partial-digest"),
        pytest.param(
            base64.b64encode(bytes(32)).decode(), {"seen_previous": 5}, 2, 2, id="previous-clamped"
        ),
        pytest.param(
            base64.b64encode(bytes(32)).decode(), {"seen_previous": True}, 2, 0, id="previous-bool"
        ),
        pytest.param(
            base64.b64encode(bytes(32)).decode(), {"seen_previous": -1}, 2, 0, id="previous-neg"
        ),
        pytest.param(
            base64.b64encode(bytes(MAX_SEEN_BYTES + 32)).decode(),
            {"seen_previous": 3},
            CAPACITY,
            1,
            id="over-the-budget",
        ),
    ],
)
def test_remembered_deliveries_restore_tolerantly(
    seen: object, extra: dict[str, object], count: int, previous: int
) -> None:
    doc = {"meeting_id": "m-1", "seen": seen, "seen_dropped": "3", **extra}
    state = MeetingState.from_json(json.dumps(doc).encode())
    assert (state.seen_count, state.seen_previous, state.seen_dropped) == (count, previous, 0)


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
            )
            .mark_seen("a")
            .mark_seen("b"),
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


_KEYS = st.integers(0, 30)
_SEEN_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), _KEYS),
        st.tuples(st.just("enter"), st.sampled_from(["s-1", "s-2", "s-3", "s-4"])),
    ),
    max_size=80,
)


@given(_SEEN_STEPS, st.integers(1, 12))
def test_remembered_deliveries_follow_the_model(steps: list[tuple[str, object]], cap: int) -> None:
    """Against a model: the current and the previous session's keys, oldest first, at most
    `cap` of them (a small budget, to reach it)."""
    previous: list[str] = []
    current: list[str] = []
    dropped = 0
    state = run()
    with mock.patch("router.core.meeting_state.MAX_SEEN_BYTES", cap * SEEN_DIGEST_BYTES):
        for step, arg in steps:
            if step == "enter":
                after = state.enter_session(str(arg))
                if after.session_id != state.session_id:
                    previous, current = current, []
                state = after
                continue
            key = body_key(int(str(arg)))
            state = state.mark_seen(key)
            if key not in previous + current:
                current.append(key)
                while len(previous) + len(current) > cap:
                    (previous if previous else current).pop(0)
                    dropped += 1
            assert len(state.seen) <= cap * SEEN_DIGEST_BYTES
        restored = MeetingState.from_json(state.to_json())
    for i in range(31):
        key = body_key(i)
        assert state.has_seen(key) == (key in previous + current)
    assert (state.seen_count, state.seen_previous) == (len(previous) + len(current), len(previous))
    assert state.seen_dropped == dropped
    assert restored == state
