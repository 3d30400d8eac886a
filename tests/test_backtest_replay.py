"""The pure parts of `router backtest`: comparing decisions, the report, the decisions read
back, the RFC 3339 bounds, and the replay itself fed messages by hand (no broker): what a
candidate decides when nothing may be called."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from router import envelope
from router.backtest import Replayer
from router.clock import rfc3339
from router.config import Settings
from router.core.backtest import Comparison, Decided, read_decision
from router.core.timeparse import parse_rfc3339
from router.kafka import Consumed
from router.samples import encode_payload, sample_payload

T0 = dt.datetime(2026, 6, 3, 10, 0, tzinfo=dt.UTC)


def decided(
    outcome: str,
    rule: str | None = "r",
    *,
    delivery: str = "d-1",
    meeting: str = "m-1",
    session: str | None = "s-1",
    action: str = "start_recording",
    recording: str | None = None,
) -> Decided:
    return Decided(delivery, meeting, session, outcome, rule, action, recording)


@pytest.mark.parametrize(
    ("decision", "starts"),
    [
        (decided("started", recording="rec-1"), True),
        (decided("already_recording", recording="rec-1"), False),
        (decided("shadow"), True),
        (decided("shadow", recording="rec-1"), False),
        (decided("shadow", action="stop_recording"), False),
        (decided("no_match", None, action="none"), False),
        (decided("failed"), False),
    ],
    ids=["started", "already", "shadow-start", "shadow-known", "shadow-stop", "no-match", "failed"],
)
def test_what_counts_as_starting_a_recording(decision: Decided, starts: bool) -> None:
    assert decision.would_start is starts


@pytest.mark.parametrize(
    ("recorded", "candidate", "changed"),
    [
        (decided("started"), decided("started"), False),
        (decided("started", "a"), decided("started", "b"), True),
        (decided("started"), decided("no_match", None), True),
        (decided("no_match", None), None, True),
        (None, decided("no_match", None), True),
        (decided("no_match", None), decided("no_match", None), False),
    ],
    ids=["same", "other-rule", "other-outcome", "candidate-none", "recorded-none", "both-none"],
)
def test_a_change_is_another_outcome_or_rule_or_a_missing_side(
    recorded: Decided | None, candidate: Decided | None, changed: bool
) -> None:
    comparison = Comparison()
    comparison.add(recorded, candidate)
    assert len(comparison.changes) == int(changed)


def test_gained_and_lost_are_by_session_and_name_each_meeting_once() -> None:
    comparison = Comparison()
    pairs = [
        # m-lost: recorded in its session, never by the candidate
        (decided("started", delivery="1", meeting="m-lost"), decided("no_match", None)),
        # m-gained: twice by the candidate in one session, once named
        (decided("no_match", None, meeting="m-gained"), decided("started", meeting="m-gained")),
        (None, decided("started", delivery="3", meeting="m-gained")),
        # m-moved: both record the session, at different joins
        (decided("started", meeting="m-moved"), decided("no_match", None, meeting="m-moved")),
        (
            decided("already_recording", meeting="m-moved", recording="r"),
            decided("started", meeting="m-moved"),
        ),
        # m-next: the candidate records the next session rather than this one
        (decided("started", meeting="m-next", session="s-1"), None),
        (None, decided("started", meeting="m-next", session="s-2")),
    ]
    for recorded, candidate in pairs:
        comparison.add(recorded, candidate)
    assert comparison.gained == ["m-gained", "m-next"]
    assert comparison.lost == ["m-lost", "m-next"]


def test_the_json_document_and_the_printed_report() -> None:
    comparison = Comparison(events=7)
    comparison.add(decided("started", "two", delivery="d-1"), decided("no_match", None))
    comparison.add(decided("no_match", None, delivery="d-2"), decided("no_match", None))
    comparison.add(None, decided("started", "three", delivery="d-3", meeting="m-2"))
    comparison.add_malformed("rtk.webhooks/0/5: not JSON: JSONDecodeError")

    assert comparison.as_json() == {
        "summary": {
            "events": 7,
            "changed": 2,
            "gained": ["m-2"],
            "lost": ["m-1"],
            "recorded": {"no_match": 1, "started": 1},
            "candidate": {"no_match": 2, "started": 1},
        },
        "changed": [
            {
                "delivery_id": "d-1",
                "meeting_id": "m-1",
                "recorded": {"outcome": "started", "rule": "two"},
                "candidate": {"outcome": "no_match", "rule": None},
            },
            {
                "delivery_id": "d-3",
                "meeting_id": "m-2",
                "recorded": {"outcome": None, "rule": None},
                "candidate": {"outcome": "started", "rule": "three"},
            },
        ],
    }
    assert comparison.lines("heading") == [
        "heading",
        "7 events replayed, 2 decisions changed",
        "",
        "outcome    recorded  candidate",
        "no_match          1          2",
        "started           1          1",
        "total             2          3",
        "",
        "would gain a recording (1): m-2",
        "would lose a recording (1): m-1",
        "",
        "malformed records, not decided (1):",
        "  rtk.webhooks/0/5: not JSON: JSONDecodeError",
        "",
        "changed decisions (2):",
        "d-1  m-1  started (two) -> no_match (-)",
        "d-3  m-2  - (-) -> started (three)",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            b'{"type":"policy.decision","version":1,"meeting_id":"m","session_id":"s",'
            b'"delivery_id":"d","participant":{"peer_id":"p","preset":"host"},"rule":"r",'
            b'"action":"start_recording","outcome":"started","recording_id":"rec",'
            b'"mode":"enforce","explanation":[]}',
            Decided("d", "m", "s", "started", "r", "start_recording", "rec", "host"),
        ),
        (
            b'{"type":"policy.decision","meeting_id":"m","delivery_id":"d",'
            b'"participant":null,"rule":null,"action":"none","outcome":"no_match"}',
            Decided("d", "m", None, "no_match", None, "none"),
        ),
        (b'{"type":"policy.decision","meeting_id":"m","outcome":"started"}', None),
        (b'{"type":"meeting.started","meeting_id":"m","delivery_id":"d"}', None),
        (b"{not json", None),
        (b"[1]", None),
        (None, None),
    ],
    ids=["full", "no-participant", "no-delivery", "other-type", "not-json", "array", "null"],
)
def test_decisions_read_back(value: bytes | None, expected: Decided | None) -> None:
    assert read_decision(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T08:00:00Z", dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)),
        ("2026-06-01t08:00:00.250+02:00", dt.datetime(2026, 6, 1, 6, 0, 0, 250000, dt.UTC)),
        ("2026-06-01 08:00:00-01:30", dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)),
        ("2026-06-01T08:00:00", None),
        ("2026-06-01", None),
        ("2026-02-30T08:00:00Z", None),
        ("2026-06-01T08:00:00+0200", None),
        ("yesterday", None),
    ],
    ids=["zulu", "offset-fraction", "space", "no-zone", "date", "impossible", "short-zone", "word"],
)
def test_rfc3339_bounds(text: str, expected: dt.datetime | None) -> None:
    assert parse_rfc3339(text) == expected


# The replay, fed by hand.


class Log:
    """Webhooks as the receiver seals them, read back as the replay reads them."""

    def __init__(self) -> None:
        self.messages: list[Consumed] = []

    def add(self, event: str, meeting: str = "m-1", *, at: int = 0, **fields: Any) -> str:
        """Append an event `at` seconds after T0; its delivery id."""
        payload = sample_payload(event, now=T0, meeting_id=meeting, session_id="s-1", **fields)
        delivery_id = f"d-{len(self.messages)}"
        received = T0 + dt.timedelta(seconds=at)
        out = envelope.seal(
            "rtk.webhooks",
            encode_payload(payload),
            payload,
            rtk_headers={},
            source="realtimekit",
            event=event,
            delivery_id=delivery_id,
            received_at=rfc3339(received),
        )
        self.messages.append(
            Consumed(
                out.topic,
                0,
                len(self.messages),
                out.key,
                out.value,
                tuple(out.headers),
                int(received.timestamp() * 1000),
            )
        )
        return delivery_id

    def join(self, peer: str, *, at: int = 0, meeting: str = "m-1", **fields: Any) -> str:
        return self.add(
            "meeting.participantJoined",
            meeting,
            at=at,
            peer_id=peer,
            custom_participant_id=peer,
            **fields,
        )

    def leave(self, peer: str, *, at: int = 0) -> str:
        return self.add("meeting.participantLeft", at=at, peer_id=peer, custom_participant_id=peer)

    def recording(self, recording_id: str, status: str, *, at: int = 0) -> str:
        return self.add(
            "recording.statusUpdate", at=at, recording={"id": recording_id, "status": status}
        )


async def replay(
    settings: Settings, log: Log, recorded: Sequence[Decided] = (), **bounds: dt.datetime
) -> tuple[Comparison, dict[str, tuple[str, str | None]]]:
    """The comparison, and the candidate's (outcome, rule) by delivery id."""
    replayer = Replayer(settings, **bounds)
    replayer.begin({d.delivery_id: d for d in recorded})
    for message in log.messages:
        await replayer.event(message)
    comparison = replayer.comparison
    candidate = {
        c.delivery_id: (c.candidate.outcome, c.candidate.rule)
        for c in comparison.changes
        if c.candidate
    }
    return comparison, candidate


def rules(*rules: dict[str, Any], mode: str = "enforce") -> dict[str, Any]:
    return {"mode": mode, "rules": list(rules)}


def start_at(count: int, name: str = "start", **when: Any) -> dict[str, Any]:
    return {
        "name": name,
        "on": "meeting.participantJoined",
        "when": {"session.participants": {"gte": count}, **when},
        "action": "start_recording",
    }


STOP_WHEN_EMPTY = {
    "name": "stop",
    "on": "meeting.participantLeft",
    "when": {"session.participants": 0},
    "action": "stop_recording",
}


async def test_a_start_is_started_once_a_session_then_already_recording_then_stopped(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    ids = [log.join("ann"), log.join("ben"), log.join("cid"), log.leave("ann")]
    ids += [log.leave("ben"), log.leave("cid")]
    settings = make_settings(policy=rules(start_at(2), STOP_WHEN_EMPTY))

    comparison, candidate = await replay(settings, log)

    assert [candidate.get(i) for i in ids] == [
        ("no_match", None),
        ("started", "start"),
        ("already_recording", "start"),
        ("no_match", None),
        ("no_match", None),
        ("stopped", "stop"),
    ]
    assert comparison.events == 6
    assert comparison.gained == ["m-1"]


async def test_shadow_mode_gives_shadow(make_settings: Callable[..., Settings]) -> None:
    log = Log()
    first = log.join("ann")
    settings = make_settings(policy=rules(start_at(1), mode="shadow"))

    comparison, candidate = await replay(settings, log)

    assert candidate == {first: ("shadow", "start")}
    assert comparison.gained == ["m-1"]  # (shadow mode would have started it)


async def test_a_stop_with_no_recording_known_is_not_recording(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    log.join("ann")
    left = log.leave("ann")
    settings = make_settings(policy=rules(STOP_WHEN_EMPTY))

    _, candidate = await replay(settings, log)

    assert candidate == {left: ("not_recording", "stop")}


async def test_the_preset_is_the_recorded_decisions_else_unknown(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    host, guest = log.join("ann"), log.join("ben", meeting="m-2")
    hosts = start_at(1, "hosts", **{"participant.preset": {"in": ["host"]}})
    recorded = [Decided(host, "m-1", "s-1", "no_match", None, "none", None, "host")]
    settings = make_settings(policy=rules(hosts))

    _, candidate = await replay(settings, log, recorded)

    assert candidate == {host: ("started", "hosts"), guest: ("no_match", None)}


async def test_statuses_of_recordings_the_recorded_policy_started_are_left_out(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    first = log.join("ann")
    log.recording("rec-recorded", "RECORDING")
    third = log.join("ben")
    # Recorded: started at the first join; the candidate starts at two, unaware of rec-recorded.
    recorded = [Decided(first, "m-1", "s-1", "started", "start", "start_recording", "rec-recorded")]
    settings = make_settings(policy=rules(start_at(2)))

    comparison, candidate = await replay(settings, log, recorded)

    assert candidate == {first: ("no_match", None), third: ("started", "start")}
    assert comparison.events == 3


async def test_a_recording_started_elsewhere_is_replayed(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    log.recording("rec-by-hand", "RECORDING")
    joined = log.join("ann")
    settings = make_settings(policy=rules(start_at(1)))

    comparison, candidate = await replay(settings, log)

    assert candidate == {joined: ("already_recording", "start")}
    assert comparison.gained == []


async def test_only_webhooks_received_within_the_bounds_are_replayed(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    ids = [log.join(f"p-{i}", at=i * 10) for i in range(5)]
    settings = make_settings(policy=rules(start_at(1)))
    bounds = {"since": T0 + dt.timedelta(seconds=10), "until": T0 + dt.timedelta(seconds=30)}

    comparison, candidate = await replay(settings, log, **bounds)

    assert comparison.events == 3
    # A fresh state from the first webhook within the bounds: it starts there.
    assert candidate == {
        ids[1]: ("started", "start"),
        ids[2]: ("already_recording", "start"),
        ids[3]: ("already_recording", "start"),
    }


async def test_a_malformed_webhook_is_counted_not_decided(
    make_settings: Callable[..., Settings],
) -> None:
    log = Log()
    log.join("ann")
    broken = log.messages[0]
    log.messages[0] = Consumed(
        broken.topic, 0, 0, broken.key, b"{not json", broken.headers, broken.timestamp_ms
    )
    settings = make_settings(policy=rules(start_at(1)))

    comparison, candidate = await replay(settings, log)

    assert (comparison.events, comparison.malformed, candidate) == (1, 1, {})
    assert comparison.malformed_shown == ["rtk.webhooks/0/0: not JSON: JSONDecodeError"]


def test_comparisons_of_partitions_merge_in_their_order() -> None:
    first, second = Comparison(events=3), Comparison(events=2)
    first.add(decided("started", delivery="a", meeting="m-1"), decided("no_match", None))
    second.add(None, decided("started", delivery="b", meeting="m-2"))
    second.add(decided("no_match", None, delivery="c", meeting="m-2"), decided("no_match", None))
    for at in range(3):
        second.add_malformed(f"rtk.webhooks/1/{at}: not JSON")

    whole = Comparison.merged([first, second])

    assert whole.as_json()["summary"] == {
        "events": 5,
        "changed": 2,
        "gained": ["m-2"],
        "lost": ["m-1"],
        "recorded": {"no_match": 1, "started": 1},
        "candidate": {"no_match": 2, "started": 1},
    }
    assert [c.delivery_id for c in whole.changes] == ["a", "b"]
    assert (whole.malformed, len(whole.malformed_shown)) == (3, 3)
