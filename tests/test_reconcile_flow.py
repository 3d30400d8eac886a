"""What a reconciliation finding does to a meeting, through the processor like any event and
against the in-memory RTK: ends, starts and recounts sessions, decides once with trigger
`reconcile`, publishes polled statuses, and leaves alone what has moved on or was never known."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from handlers import Ports
from router.config import TopicsConfig
from router.core.entities import RecordingInfo
from router.core.meeting_state import MeetingState
from router.core.reconciliation import LiveSession, ReconcileEvent, RecordingPolled, SessionChecked
from router.metrics import Metrics
from router.processing import Processed, Processor, Synthetic
from tests.fake_rtk import FakeRtk
from tests.plugins.policy import JOINED, WEDNESDAY_NOON, policy_of, rule

MEETING = "m-r"
TOPICS = TopicsConfig()
TWO = policy_of(rule("two", on=JOINED, when={"session.participants": {"gte": 2}}))
LIVE = MeetingState(MEETING, session_id="s-1", peers={"p-1": "u-1"})


def processor(rtk: FakeRtk, policy: Any = TWO) -> Processor:
    ports = Ports(policy=policy, mode="enforce", rtk=rtk, metrics=Metrics(), now=lambda: NOW)
    return Processor(topics=TOPICS, ports=ports, metrics=Metrics(), now=lambda: NOW)


NOW = WEDNESDAY_NOON + dt.timedelta(minutes=5)


def synthetic(event: ReconcileEvent) -> Synthetic:
    return Synthetic.of(event, 0, NOW + dt.timedelta(microseconds=1), source="reconcile")


async def run(rtk: FakeRtk, event: ReconcileEvent, state: MeetingState = LIVE) -> Processed:
    return await processor(rtk).process(synthetic(event), state)


def values(processed: Processed, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.value or b"{}") for m in processed.messages if m.topic == topic]


def session(count: int, session_id: str = "s-1") -> SessionChecked:
    return SessionChecked(MEETING, "s-1", LiveSession(session_id, count))


async def test_a_higher_count_is_adopted_and_starts_the_recording_once() -> None:
    rtk = FakeRtk()

    first = await run(rtk, session(2))
    assert first.state is not None
    again = await run(rtk, session(3), first.state)

    assert first.state.participants_present == 2
    reconciled = values(first, TOPICS.meetings)
    assert [(r["type"], r["participants_present"], r["reason"]) for r in reconciled] == [
        ("meeting.reconciled", 2, "reconciled")
    ]
    decision = values(first, TOPICS.decisions)[0]
    assert (decision["trigger"], decision["outcome"], decision["participant"]) == (
        "reconcile",
        "started",
        None,
    )
    assert decision["delivery_id"] == f"reconcile:{MEETING}:2026-06-03T12:05:00.000001Z"
    assert values(first, TOPICS.recordings)[0]["source"] == "api"
    assert [d["outcome"] for d in values(again, TOPICS.decisions)] == ["already_recording"]
    assert rtk.calls.count("start_recording") == 1
    # No dead-letter copy and no remembered body: the event was the router's own.
    assert not [m for m in first.messages if m.topic == TOPICS.dead_letter]
    assert first.state.seen == LIVE.seen


async def test_no_live_session_ends_the_believed_one() -> None:
    processed = await run(FakeRtk(), SessionChecked(MEETING, "s-1", None))

    assert processed.state is not None
    assert processed.state.is_past_session("s-1")
    assert processed.state.participants_present == 0
    ended = values(processed, TOPICS.meetings)
    assert [(r["type"], r["session_id"], r["participants_present"]) for r in ended] == [
        ("meeting.ended", "s-1", 0)
    ]
    assert ended[0]["reason"] == "reconciled"
    assert values(processed, TOPICS.decisions) == []


async def test_a_session_never_seen_ends_the_old_and_starts_the_new() -> None:
    processed = await run(FakeRtk(), session(2, session_id="s-2"))

    assert processed.state is not None
    assert processed.state.session_id == "s-2"
    assert [
        (r["type"], r["session_id"], r["participants_present"])
        for r in values(processed, TOPICS.meetings)
    ] == [
        ("meeting.ended", "s-1", 0),
        ("meeting.started", "s-2", 0),
        ("meeting.reconciled", "s-2", 2),
    ]
    assert [d["outcome"] for d in values(processed, TOPICS.decisions)] == ["started"]


@pytest.mark.parametrize(
    "event",
    [
        SessionChecked(MEETING, "s-0", None),  # asked about a session since replaced
        SessionChecked(MEETING, "s-1", LiveSession("s-old", 4)),  # RTK names one that ended
        SessionChecked(MEETING, "s-1", LiveSession("s-1", 1)),  # in step after all
    ],
    ids=["moved-on", "past-session", "in-step"],
)
async def test_findings_that_are_no_news_change_nothing(event: SessionChecked) -> None:
    state = MeetingState(MEETING, session_id="s-1", peers={"p-1": None}, past_sessions=("s-old",))

    processed = await run(FakeRtk(), event, state)

    assert processed.messages == ()
    assert processed.state in (None, state)


async def test_a_start_that_fails_keeps_the_old_count_for_the_next_round() -> None:
    rtk = FakeRtk()
    rtk.fail("start_recording", 500, count=10_000)

    processed = await run(rtk, session(2))

    assert processed.state is not None
    assert processed.state.participants_present == 1
    assert [d["outcome"] for d in values(processed, TOPICS.decisions)] == ["failed"]
    assert not [m for m in processed.messages if m.topic == TOPICS.dead_letter]


def polled(recording_id: str, status: str, **more: Any) -> RecordingPolled:
    info = RecordingInfo.model_validate({"id": recording_id, "status": status, **more})
    return RecordingPolled(MEETING, info)


async def test_a_polled_status_ahead_is_published_with_source_poll() -> None:
    state = MeetingState(MEETING, session_id="s-1", recordings={"rec-1": "RECORDING"})

    processed = await run(
        FakeRtk(), polled("rec-1", "UPLOADED", download_url="https://x/f.mp4"), state
    )

    [record] = values(processed, TOPICS.recordings)
    assert (record["status"], record["previous_status"], record["source"]) == (
        "UPLOADED",
        "RECORDING",
        "poll",
    )
    assert record["download_url"] == "https://x/f.mp4"
    assert processed.state is not None
    assert processed.state.recordings["rec-1"] == "UPLOADED"


@pytest.mark.parametrize(
    ("recording_id", "status"), [("rec-9", "UPLOADED"), ("rec-1", "INVOKED")], ids=str
)
async def test_a_poll_never_invents_or_goes_back(recording_id: str, status: str) -> None:
    state = MeetingState(MEETING, session_id="s-1", recordings={"rec-1": "RECORDING"})

    processed = await run(FakeRtk(), polled(recording_id, status), state)

    assert processed.messages == ()
    assert processed.state is not None
    assert dict(processed.state.recordings) == {"rec-1": "RECORDING"}


def test_a_lower_count_drops_placeholders_first() -> None:
    state = MeetingState(MEETING, session_id="s-1", peers={"p-1": "u-1", "p-2": "u-2"})

    up = state.adopt_count(4)
    down = up.adopt_count(2)
    lower = down.adopt_count(1)

    assert list(up.peers) == ["p-1", "p-2", "reconciled:1", "reconciled:2"]
    assert list(down.peers) == ["p-1", "p-2"]
    assert list(lower.peers) == ["p-2"]
    assert up.distinct_participants == 2
    assert MeetingState.from_json(up.to_json()) == up


def test_a_late_join_takes_a_placeholders_place() -> None:
    state = MeetingState(MEETING, session_id="s-1", peers={"p-1": "u-1"}).adopt_count(3)

    late = state.joined("p-2", "u-2")
    again = late.joined("p-2", "u-2")

    assert list(late.peers) == ["p-1", "reconciled:2", "p-2"]
    assert again == late
    assert late.participants_present == 3
    assert late.joined("p-3").joined("p-4").participants_present == 4
