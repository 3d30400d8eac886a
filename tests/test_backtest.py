"""`router backtest` over a log a real router recorded: a router and the RTK emulator play
meetings with one policy, then the command replays the webhooks log with another and names the
decisions that change and the recordings gained and lost, calling nothing on RTK."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from router.broker import free_port
from router.clock import now, rfc3339
from tests.plugins.e2e import Loop, loop_config
from tests.plugins.topics import Driver, has_type, start_driver
from tests.plugins.traffic import start_at

# The recorded policy starts at two participants; the candidate at three, and at once for a
# meeting titled `Board`.
RECORDED = start_at(2)
CANDIDATE = {
    "rules": [
        {
            "name": "board-at-once",
            "on": "meeting.participantJoined",
            "when": {"meeting.title": {"regex": "^Board"}},
            "action": "start_recording",
        },
        *start_at(3)["rules"],
    ]
}
RULE = "start-at-threshold"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Recorded:
    """A finished run of the recorded policy, and how to backtest against its log."""

    driver: Driver
    tmp_path: Path
    between: str  # an RFC 3339 time after the first two meetings and before the board's

    @property
    def loop(self) -> Loop:
        return self.driver.loop

    def write(self, name: str, **sections: Any) -> Path:
        """A config for this loop's broker with these sections (a candidate policy...)."""
        config = loop_config(self.loop.emulator, self.loop.broker.bootstrap_servers, **sections)
        path = self.tmp_path / name
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    async def backtest(self, config: Path, *args: str) -> Result:
        return await self.backtest_at(self.tmp_path, config, *args)

    @staticmethod
    async def backtest_at(cwd: Path, config: Path, *args: str) -> Result:
        """`router backtest --config CONFIG ARGS...` run in `cwd`."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "router.cli",
            "backtest",
            "--config",
            str(config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    async def delivery_ids(self, meeting_id: str) -> list[str]:
        """The delivery ids of the meeting's recorded decisions, in order."""
        found = await self.driver.values("decisions", key=meeting_id)
        return [d["delivery_id"] for d in found]


def joins(meeting_id: str, title: str, people: int) -> dict[str, Any]:
    steps = [{"action": "join", "participant": f"person-{i}"} for i in range(people)]
    return {"meeting_id": meeting_id, "title": title, "end_when_empty": False, "steps": steps}


async def play(driver: Driver, meeting_id: str, title: str, people: int) -> None:
    await driver.loop.play(joins(meeting_id, title, people))
    await driver.messages(
        "decisions", key=meeting_id, until=has_type("policy.decision", count=people)
    )


@pytest.fixture
async def recorded(make_loop: Callable[..., Awaitable[Loop]], tmp_path: Path) -> Recorded:
    """Three meetings played with the recorded policy: two people (recorded), three people
    (recorded), then, after `between`, one person in a board meeting (not recorded)."""
    driver = await start_driver(make_loop, policy=RECORDED)
    await play(driver, "m-pair", "Weekly", 2)
    await play(driver, "m-trio", "Weekly", 3)
    for meeting_id in ("m-pair", "m-trio"):
        # RTK's status updates of the recordings, which the replay must leave out.
        await driver.messages(
            "recordings", key=meeting_id, until=has_type("recording.status_changed", count=2)
        )
    await driver.settled()
    await asyncio.sleep(0.05)
    between = rfc3339(now())
    await asyncio.sleep(0.05)
    await play(driver, "m-board", "Board review", 1)
    await driver.settled()
    return Recorded(driver, tmp_path, between)


async def test_a_changed_rule_names_changed_decisions_gained_and_lost_recordings(
    recorded: Recorded,
) -> None:
    calls = await recorded.loop.calls()
    candidate = recorded.write("candidate.yaml", policy=CANDIDATE)

    result = await recorded.backtest(candidate, "--json")

    assert result.code == 0, result.err
    report = result.json()
    summary = report["summary"]
    assert summary["gained"] == ["m-board"]
    assert summary["lost"] == ["m-pair"]
    assert summary["recorded"] == {"already_recording": 1, "no_match": 3, "started": 2}
    assert summary["candidate"] == {"no_match": 4, "started": 2}
    assert summary["events"] == len(await recorded.driver.read("webhooks"))
    pair, trio, board = [await recorded.delivery_ids(m) for m in ("m-pair", "m-trio", "m-board")]
    expected = [
        change("m-pair", pair[1], ("started", RULE), ("no_match", None)),
        change("m-trio", trio[1], ("started", RULE), ("no_match", None)),
        change("m-trio", trio[2], ("already_recording", RULE), ("started", RULE)),
        change("m-board", board[0], ("no_match", None), ("started", "board-at-once")),
    ]
    # In log order within a meeting; meetings on different partitions in any order.
    assert sorted(report["changed"], key=order) == sorted(expected, key=order)
    for meeting_id in ("m-pair", "m-trio", "m-board"):
        assert [c for c in report["changed"] if c["meeting_id"] == meeting_id] == [
            c for c in expected if c["meeting_id"] == meeting_id
        ]
    assert summary["changed"] == 4

    text = await recorded.backtest(candidate)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert "would gain a recording (1): m-board" in lines
    assert "would lose a recording (1): m-pair" in lines
    assert f"{trio[2]}  m-trio  already_recording ({RULE}) -> started ({RULE})" in lines
    assert f"{board[0]}  m-board  no_match (-) -> started (board-at-once)" in lines
    assert f"{pair[1]}  m-pair  started ({RULE}) -> no_match (-)" in lines
    table = lines[lines.index(next(x for x in lines if x.startswith("outcome"))) :]
    assert table[1].split() == ["already_recording", "1", "0"]
    assert table[2].split() == ["no_match", "3", "4"]
    assert table[3].split() == ["started", "2", "2"]

    # Nothing was asked of RTK: no start, no stop, no look-up.
    assert await recorded.loop.calls() == calls


def change(
    meeting_id: str, delivery_id: str, was: tuple[str, str | None], now: tuple[str, str | None]
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "meeting_id": meeting_id,
        "recorded": {"outcome": was[0], "rule": was[1]},
        "candidate": {"outcome": now[0], "rule": now[1]},
    }


def order(change: dict[str, Any]) -> str:
    return json.dumps(change, sort_keys=True)


async def test_the_recorded_policy_changes_nothing(recorded: Recorded) -> None:
    same = recorded.write("same.yaml", policy=RECORDED)

    result = await recorded.backtest(same, "--json")

    assert result.code == 0, result.err
    summary = result.json()["summary"]
    assert summary["changed"] == 0
    assert result.json()["changed"] == []
    assert summary["gained"] == summary["lost"] == []
    assert (
        summary["recorded"]
        == summary["candidate"]
        == {
            "already_recording": 1,
            "no_match": 3,
            "started": 2,
        }
    )


async def test_from_and_until_bound_the_replay(recorded: Recorded) -> None:
    candidate = recorded.write("candidate.yaml", policy=CANDIDATE)
    everything = (await recorded.backtest(candidate, "--json")).json()["summary"]

    before = await recorded.backtest(candidate, "--json", "--until", recorded.between)
    after = await recorded.backtest(candidate, "--json", "--from", recorded.between)

    assert before.code == after.code == 0, before.err + after.err
    early, late = before.json(), after.json()
    assert early["summary"]["events"] + late["summary"]["events"] == everything["events"]
    assert late["summary"]["events"] > 0
    assert {c["meeting_id"] for c in early["changed"]} == {"m-pair", "m-trio"}
    assert (early["summary"]["gained"], early["summary"]["lost"]) == ([], ["m-pair"])
    assert [c["meeting_id"] for c in late["changed"]] == ["m-board"]
    assert (late["summary"]["gained"], late["summary"]["lost"]) == (["m-board"], [])


async def test_a_malformed_record_on_the_log_is_counted_and_shown(recorded: Recorded) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=recorded.loop.broker.bootstrap_servers)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            recorded.loop.kafka.topics.webhooks,
            b"{not json",
            key=b"m-garbage",
            headers=[("router-event", b"meeting.participantJoined")],
        )
    finally:
        await producer.stop()
    candidate = recorded.write("candidate.yaml", policy=CANDIDATE)

    text = await recorded.backtest(candidate)
    as_json = await recorded.backtest(candidate, "--json")

    assert text.code == as_json.code == 0, text.err + as_json.err
    where = f"{sent.topic}/{sent.partition}/{sent.offset}"
    lines = text.out.splitlines()
    assert "malformed records, not decided (1):" in lines
    assert f"  {where}: not JSON: JSONDecodeError" in lines
    assert as_json.json()["summary"]["changed"] == 4
    assert [line for line in as_json.err.splitlines() if " malformed record on " in line] == [
        f"warning: 1 malformed record on {sent.topic}, not decided: "
        f"{where}: not JSON: JSONDecodeError"
    ]


@pytest.mark.parametrize(
    ("args", "sections", "message"),
    [
        (
            ["--from", "yesterday"],
            {},
            "router: --from 'yesterday' is not an RFC 3339 time (for example 2026-06-01T08:00:00Z)",
        ),
        (
            ["--until", "2026-06-01T08:00:00"],
            {},
            "router: --until '2026-06-01T08:00:00' is not an RFC 3339 time (for example "
            "2026-06-01T08:00:00Z)",
        ),
        (
            [],
            {"kafka": {"topics": {"decisions": "no.such.decisions"}}},
            "router: topic 'no.such.decisions' does not exist on the broker",
        ),
    ],
    ids=["from-not-a-time", "until-without-zone", "missing-topic"],
)
async def test_bad_input_is_one_line(
    recorded: Recorded, args: list[str], sections: dict[str, Any], message: str
) -> None:
    config = recorded.write("candidate.yaml", policy=CANDIDATE)
    if sections:
        raw = json.loads(config.read_text())
        raw["kafka"] = {**raw["kafka"], **sections["kafka"]}
        config.write_text(json.dumps(raw))

    result = await recorded.backtest(config, *args)

    assert result.code == (1 if sections else 2)
    assert result.out == ""
    assert "Traceback" not in result.err
    assert [line for line in result.err.splitlines() if line.startswith("router: ")] == [message]


async def test_a_candidate_with_config_errors_names_them(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "sources:\n"
        "  - name: realtimekit\n"
        "    path: /webhooks/realtimekit\n"
        "    signature: {scheme: rtk-rsa}\n"
        "policy:\n"
        "  rules:\n"
        "    - name: a\n"
        "      when:\n"
        "        meeting.title: {regexp: x}\n"
        "      action: start_recording\n",
        encoding="utf-8",
    )

    result = await Recorded.backtest_at(tmp_path, config)

    assert result.code == 2
    assert result.err.splitlines() == [
        f"{config}:9: policy.rules[0].when.meeting.title: unknown operator 'regexp'"
    ]


async def test_a_broker_out_of_reach_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "candidate.yaml"
    config.write_text(
        "sources:\n"
        "  - name: realtimekit\n"
        "    path: /webhooks/realtimekit\n"
        "    signature: {scheme: rtk-rsa}\n"
        f"kafka: {{bootstrap_servers: '127.0.0.1:{port}'}}\n",
        encoding="utf-8",
    )

    result = await Recorded.backtest_at(tmp_path, config)

    assert result.code == 1
    [line] = result.err.splitlines()
    assert line.startswith(f"router: cannot read the topics from 127.0.0.1:{port}: "), line


async def test_help_names_the_options(tmp_path: Path) -> None:
    result = await Recorded.backtest_at(tmp_path, tmp_path / "unused.yaml", "--help")
    assert result.code == 0
    for option in ("--config", "--from RFC3339", "--until RFC3339", "--json"):
        assert option in result.out
