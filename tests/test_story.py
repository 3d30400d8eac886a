"""The story of a meeting from its records (`router.core.story`): order, kinds, summaries and
the verdict, from tables of records as they lie on the topics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.core.story import Story, StoryRecord, build_story

T0 = 1_780_000_000_000  # ms; 2026-05-28T20:26:40Z
EXPLAINED_NO = [
    {"rule": "big", "matched": False, "why": "session.participants 1 >= 2: no"},
    {"rule": "board", "matched": False, "why": "meeting.title 'Sync' matches regex '^Board': no"},
]


def meeting(kind: str, meeting_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "version": 1,
        "meeting_id": meeting_id,
        "session_id": "s-1",
        "title": "Sync",
        "participants_present": 1,
        "participant": None,
        "reason": None,
    } | extra


def decision(outcome: str, rule: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "policy.decision",
        "version": 1,
        "meeting_id": "m-1",
        "session_id": "s-1",
        "trigger": "meeting.participantJoined",
        "participant": {"peer_id": "p-1", "display_name": "Ann", "preset": "host"},
        "rule": rule,
        "action": "start_recording" if rule else "none",
        "outcome": outcome,
        "recording_id": None,
        "mode": "enforce",
        "policy_version": "0123456789ab",
        "error": None,
        "explanation": [],
    } | extra


def recording(status: str, previous: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "recording.status_changed",
        "meeting_id": "m-1",
        "recording_id": "rec-1",
        "status": status,
        "previous_status": previous,
        "source": "webhook",
    } | extra


def on(
    topic: str, value: object, at: int, *, key: str | None = "m-1", **headers: str
) -> StoryRecord:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return StoryRecord(topic, 0, at, T0 + at * 1000, headers, raw, key)


JOIN = meeting("participant.joined", participant={"peer_id": "p-1", "display_name": "Ann"})
RECORDED = [
    on("meetings", meeting("meeting.started", participants_present=0), 1),
    on("meetings", JOIN, 2),
    on("decisions", decision("started", "all", recording_id="rec-1"), 3),
    on("recordings", recording("INVOKED", source="api"), 3),
    on("recordings", recording("RECORDING", "INVOKED"), 4),
]
NOT_RECORDED = [
    on("meetings", JOIN, 1),
    on("decisions", decision("no_match", explanation=EXPLAINED_NO), 2),
]
FAILED = [
    on("meetings", JOIN, 1),
    on("decisions", decision("failed", "all", error="RTK answered 500 for 600 s"), 2),
    on("dead_letter", b'{"event": "meeting.participantJoined"}', 2, **{"router-error": "x"}),
]
ERRORED = [*RECORDED, on("recordings", recording("ERRORED", "RECORDING"), 5)]
SHADOW = [on("decisions", decision("shadow", "all", mode="shadow"), 1)]
SKIPPED = [on("decisions", decision("skipped", "quiet", action="none"), 1)]
ONLY_MEETINGS = [on("meetings", JOIN, 1)]
RETRIED = [*FAILED, on("decisions", decision("started", "all", recording_id="rec-2"), 3)]
LATER_NO_MATCH = [*RECORDED, on("decisions", decision("no_match"), 9)]
DEAD_ONLY = [
    on("dead_letter", b"{}", 1, **{"router-error": "no recording object", "router-stage": "parse"})
]
RTK_STARTED = [on("recordings", recording("RECORDING"), 1)]


@pytest.mark.parametrize(
    ("records", "line", "recording_id"),
    [
        (RECORDED, "verdict: recorded (recording rec-1, rule all)", "rec-1"),
        (
            NOT_RECORDED,
            "verdict: not recorded (no_match: big: session.participants 1 >= 2: no; "
            "board: meeting.title 'Sync' matches regex '^Board': no)",
            None,
        ),
        (FAILED, "verdict: recording failed (RTK answered 500 for 600 s)", None),
        (ERRORED, "verdict: recording failed (recording rec-1 errored)", "rec-1"),
        (
            SHADOW,
            "verdict: not recorded (shadow: rule all matched; shadow mode calls nothing)",
            None,
        ),
        (SKIPPED, "verdict: not recorded (skipped: rule quiet skips this event)", None),
        (
            ONLY_MEETINGS,
            "verdict: not recorded (no decision: no rule was written for its events)",
            None,
        ),
        (RETRIED, "verdict: recorded (recording rec-2, rule all)", "rec-2"),
        (LATER_NO_MATCH, "verdict: recorded (recording rec-1, rule all)", "rec-1"),
        (DEAD_ONLY, "verdict: recording failed (event at stage parse: no recording object)", None),
        (RTK_STARTED, "verdict: recorded (recording rec-1, rule none)", "rec-1"),
    ],
    ids=[
        "recorded",
        "not-recorded",
        "failed",
        "errored",
        "shadow",
        "skipped",
        "no-decision",
        "failed-then-started",
        "recorded-stays",
        "dead-letter",
        "started-outside",
    ],
)
def test_verdict(records: list[StoryRecord], line: str, recording_id: str | None) -> None:
    story = build_story("m-1", records)
    assert story.verdict is not None
    assert story.verdict.line() == line
    assert story.verdict.recording_id == recording_id
    assert story.lines()[-1] == line
    assert story.to_json()["verdict"] == story.verdict.to_json()


def test_entries_in_time_order_with_kinds_and_summaries() -> None:
    story = build_story("m-1", reversed(RECORDED))
    assert [e.kind for e in story.entries] == [
        "meeting.started",
        "participant.joined",
        "decision",
        "recording",
        "recording",
    ]
    assert [e.time for e in story.entries][:2] == [
        "2026-05-28T20:26:41.000Z",
        "2026-05-28T20:26:42.000Z",
    ]
    lines = story.lines()
    assert (
        lines[0]
        == "2026-05-28T20:26:41.000Z  meeting.started  session s-1, title 'Sync', 0 present"
    )
    assert lines[2] == (
        "2026-05-28T20:26:43.000Z  decision  started on meeting.participantJoined by Ann "
        "(peer p-1) as host, rule all, policy 0123456789ab, recording rec-1"
    )
    assert lines[4].endswith("recording  rec-1 INVOKED -> RECORDING, source webhook")


def test_a_decision_that_started_nothing_names_the_rules_that_did_not_match() -> None:
    (_, entry) = build_story("m-1", NOT_RECORDED).entries
    assert entry.summary == (
        "no_match on meeting.participantJoined by Ann (peer p-1) as host, rule none, "
        "policy 0123456789ab, recording none; not matched: big: session.participants 1 >= 2: "
        "no; board: meeting.title 'Sync' matches regex '^Board': no"
    )


def test_other_meetings_are_left_out_and_the_key_decides_for_unreadable_records() -> None:
    records = [
        *RECORDED,
        on("meetings", meeting("participant.joined", "m-2"), 5, key="m-2"),
        on("decisions", decision("started", "all", meeting_id="m-2"), 6, key="m-2"),
        on("decisions", b"not json", 7, key="m-2"),
        on("meetings", meeting("meeting.ended", participants_present=0), 8, key=None),
    ]
    story = build_story("m-1", records)
    assert len(story.entries) == len(RECORDED) + 1
    assert story.entries[-1].kind == "meeting.ended"
    assert build_story("m-3", records) == Story("m-3")


@pytest.mark.parametrize(
    ("topic", "value", "reason"),
    [
        ("decisions", b"\xff{oops", "not JSON"),
        ("meetings", b"[1, 2]", "not a JSON object"),
        ("recordings", json.dumps(recording("X") | {"status": 3}).encode(), "no string status"),
        ("decisions", json.dumps({"meeting_id": "m-1"}).encode(), "no string trigger, outcome"),
        ("meetings", None, "no value"),
        ("dead_letter", b"\x00", "not JSON"),
    ],
    ids=["not-json", "array", "wrong-type", "missing-fields", "tombstone", "dead-letter"],
)
def test_a_malformed_record_is_an_entry_that_says_so(
    topic: str, value: bytes | None, reason: str
) -> None:
    bad = StoryRecord(topic, 2, 41, T0 + 1500, {}, value, "m-1")
    story = build_story("m-1", [*NOT_RECORDED, bad])
    entry = story.entries[1]
    assert (entry.kind, entry.record) == ("malformed", None)
    assert entry.summary == f"unreadable record on {topic} partition 2 offset 41: {reason}"
    assert entry.to_json()["kind"] == "malformed"
    assert story.verdict is not None
    assert story.verdict.verdict == "not_recorded"


def test_unknown_meeting_types_are_their_own_kind() -> None:
    reconciled = meeting("meeting.reconciled", participants_present=3, reason="reconciled")
    story = build_story("m-1", [on("meetings", reconciled, 1)])
    assert story.lines()[0].endswith(
        "meeting.reconciled  session s-1, 3 present, reason reconciled"
    )


def test_dead_letter_entry_shows_event_stage_and_error_not_the_body() -> None:
    headers = {
        "router-event": "recording.statusUpdate",
        "router-stage": "parse",
        "router-error": "no recording object",
        "rtk-uuid": "d-9",
    }
    body = json.dumps({"event": "recording.statusUpdate", "meetingId": "m-1", "x": "secret"})
    story = build_story("m-1", [on("dead_letter", body.encode(), 1, key=None, **headers)])
    (entry,) = story.entries
    assert entry.kind == "dead-letter"
    assert (
        entry.summary == "recording.statusUpdate (delivery d-9) at stage parse: no recording object"
    )
    assert "secret" not in json.dumps(story.to_json())


def test_json_shapes() -> None:
    story = build_story("m-1", RECORDED)
    document = story.to_json()
    assert list(document) == ["meeting_id", "timeline", "verdict"]
    first = document["timeline"][0]  # type: ignore[index]
    assert {"time", "kind", "summary", "record"} <= set(first)
    assert first["record"]["type"] == "meeting.started"
    assert document["verdict"] == {
        "verdict": "recorded",
        "detail": "recording rec-1, rule all",
        "recording_id": "rec-1",
    }
    assert json.loads(json.dumps(document)) == document
    assert Story("m-9").to_json() == {"meeting_id": "m-9", "timeline": [], "verdict": None}
