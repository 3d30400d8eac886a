"""`router why MEETING_ID` (SPEC 9.1, 9.2) as an operator runs it, against the real broker after
a real run of the whole loop: the story and verdict of a recorded, a not-recorded and a failed
meeting, `--json`, an unknown id, a malformed record, a missing topic and a broker that is not
there; and the explanation each decision carries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from router.broker import EmbeddedBroker, free_port
from router.config import parse_config
from router.kafka import Publisher, TopicAdmin, key_partition
from tests.plugins.full_run import FAILING, INTERNAL, INVALID, RECORDED, UNKNOWN, FullRun
from tests.plugins.kafka import base_config
from tests.plugins.process import run_router

LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)  (\S+)  (.+)$")
REPO = Path(__file__).resolve().parents[1]


async def why(config: Path, *args: str) -> tuple[int, list[str], list[str]]:
    """Run `router why` as a process: exit code, stdout lines, stderr lines."""
    ran = await run_router("why", *args, "--config", str(config), cwd=REPO)
    return ran.code, ran.out.splitlines(), ran.err.splitlines()


def write_config(directory: Path, public_key_file: Path, **kafka: Any) -> Path:
    config = base_config(public_key_file, kafka=kafka)
    config["sources"] = config["sources"][:1]  # (the other one has literal secrets: warnings)
    path = directory / f"why-{len(list(directory.iterdir()))}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def story_lines(lines: list[str]) -> list[tuple[str, str, str]]:
    """The entry lines as (time, kind, summary), checked to be in time order."""
    parsed = []
    for line in lines:
        match = LINE.match(line)
        assert match, line
        parsed.append((match[1], match[2], match[3]))
    times = [time for time, _, _ in parsed]
    assert times == sorted(times)
    return parsed


async def test_the_story_and_verdict_of_each_kind_of_meeting(
    full_run: FullRun, tmp_path: Path, public_key_file: Path
) -> None:
    loop = full_run.loop
    config = write_config(
        tmp_path, public_key_file, bootstrap_servers=loop.broker.bootstrap_servers
    )
    decisions = {m: await full_run.driver.values("decisions", key=m) for m in (RECORDED, INTERNAL)}
    (started, *_) = decisions[RECORDED]
    recording_id, version = started["recording_id"], started["policy_version"]
    assert recording_id
    assert started["explanation"] == [
        {
            "rule": "record-titled",
            "matched": True,
            "why": "meeting.title 'Recorded board' matches regex '^Recorded': yes",
        }
    ]

    code, out, err = await why(config, RECORDED)
    assert (code, err) == (0, [])
    assert out[-1] == f"verdict: recorded (recording {recording_id}, rule record-titled)"
    entries = story_lines(out[:-1])
    kinds = [kind for _, kind, _ in entries]
    for kind in ("meeting.started", "participant.joined", "participant.left", "meeting.ended"):
        assert kind in kinds
    assert (
        kinds.index("participant.joined") < kinds.index("decision") < kinds.index("meeting.ended")
    )
    assert "recording" in kinds
    assert "meeting.chat_ready" in kinds  # the other meetings types are told too
    summaries = [summary for _, kind, summary in entries if kind == "decision"]
    assert summaries[0].startswith("started on meeting.participantJoined by ")
    assert f"rule record-titled, policy {version}, recording {recording_id}" in summaries[0]
    statuses = " ".join(summary for _, kind, summary in entries if kind == "recording")
    assert "RECORDING -> UPLOADING" in statuses
    assert "download url https://" in statuses

    # Not recorded: the rule's judgement on the title, on the decision line and the verdict.
    (internal,) = decisions[INTERNAL]
    (judged,) = internal["explanation"]
    assert (judged["rule"], judged["matched"]) == ("record-titled", False)
    assert re.fullmatch(r"meeting\.title '.*' matches regex '\^Recorded': no", judged["why"])
    code, out, err = await why(config, INTERNAL)
    assert (code, err) == (0, [])
    assert out[-1] == f"verdict: not recorded (no_match: record-titled: {judged['why']})"
    (decision,) = [s for _, kind, s in story_lines(out[:-1]) if kind == "decision"]
    assert decision.endswith(f"; not matched: record-titled: {judged['why']}")

    # Failed: RTK refused the start; the decision, its dead-letter copy and the verdict say so.
    code, out, err = await why(config, FAILING)
    assert (code, err) == (0, [])
    assert out[-1].startswith("verdict: recording failed (")
    assert "storage_config rejected" in out[-1]
    kinds = [kind for _, kind, _ in story_lines(out[:-1])]
    assert kinds[-2:] == ["decision", "dead-letter"] or kinds[-2:] == ["dead-letter", "decision"]

    # Only dead-letters known of a meeting: it failed, and each one names its stage.
    code, out, err = await why(config, INVALID)
    assert code == 0
    dead = [s for _, kind, s in story_lines(out[:-1]) if kind == "dead-letter"]
    assert len(dead) == 2
    assert all(" at stage parse: " in summary for summary in dead)
    assert out[-1] == f"verdict: recording failed ({dead[0]})"

    # --json: the same entries, one object a line, the verdict last.
    code, out, err = await why(config, RECORDED, "--json")
    assert (code, err) == (0, [])
    lines = [json.loads(line) for line in out]
    assert lines[-1] == {
        "verdict": "recorded",
        "detail": f"recording {recording_id}, rule record-titled",
        "recording_id": recording_id,
    }
    _, text, _ = await why(config, RECORDED)
    assert [line["kind"] for line in lines[:-1]] == [k for _, k, _ in story_lines(text[:-1])]
    assert [f"{e['time']}  {e['kind']}  {e['summary']}" for e in lines[:-1]] == text[:-1]
    first_decision = next(e for e in lines if e.get("kind") == "decision")
    assert first_decision["record"]["explanation"] == started["explanation"]

    # Nothing known: an id never seen, and one seen only on the webhooks log.
    for unknown in ("m-nobody", UNKNOWN):
        code, out, err = await why(config, unknown)
        assert (code, out) == (1, [])
        assert err == [f"router: nothing is known of meeting '{unknown}'"]


async def test_a_malformed_record_is_told_and_the_partition_is_the_producers(
    broker: EmbeddedBroker, tmp_path: Path, public_key_file: Path
) -> None:
    config = write_config(tmp_path, public_key_file, bootstrap_servers=broker.bootstrap_servers)
    kafka = parse_config(config.read_text(), "why.json", {}).settings.kafka
    topics = kafka.topics
    names = [topics.meetings, topics.decisions, topics.recordings, topics.dead_letter]
    admin = TopicAdmin(kafka, broker.bootstrap_servers, names)
    assert await admin.ensure() == []
    publisher = Publisher(kafka, broker.bootstrap_servers, admin)
    await publisher.start()
    joined = {
        "type": "participant.joined",
        "version": 1,
        "meeting_id": "m-x",
        "session_id": "s-x",
        "participant": {"peer_id": "p-1", "display_name": "Ann"},
        "participants_present": 1,
    }
    placed = []
    try:
        for meeting_id in ("m-x", "m-y", "m-z", "m-w"):  # (some share m-x's partition, some not)
            value = json.dumps(joined | {"meeting_id": meeting_id}).encode()
            sent = await publisher.publish(
                topics.meetings, value, key=meeting_id.encode(), headers=[], timeout=5
            )
            placed.append((meeting_id, sent[0]))
        partition, _ = await publisher.publish(
            topics.decisions, b"\x00 not json", key=b"m-x", headers=[], timeout=5
        )
    finally:
        await publisher.stop()
        await admin.close()
    for meeting_id, where in placed:
        assert where == key_partition(meeting_id.encode(), range(kafka.partitions))

    code, out, err = await why(config, "m-x")
    assert (code, err) == (0, [])
    entries = story_lines(out[:-1])
    assert [kind for _, kind, _ in entries] == ["participant.joined", "malformed"]
    assert entries[0][2] == "session s-x, Ann (peer p-1), 1 present"
    assert entries[1][2] == (
        f"unreadable record on decisions partition {partition} offset 0: not JSON"
    )
    assert out[-1] == "verdict: not recorded (no decision: no rule was written for its events)"
    code, out, err = await why(config, "m-x", "--json")
    assert code == 0
    assert json.loads(out[1])["kind"] == "malformed"
    assert json.loads(out[1])["record"] is None


async def test_a_missing_topic_and_an_absent_broker_are_one_line(
    broker: EmbeddedBroker, tmp_path: Path, public_key_file: Path
) -> None:
    missing = write_config(
        tmp_path,
        public_key_file,
        bootstrap_servers=broker.bootstrap_servers,
        topics={"decisions": "no.such.topic"},
    )
    kafka = parse_config(missing.read_text(), "why.json", {}).settings.kafka
    admin = TopicAdmin(kafka, broker.bootstrap_servers, [kafka.topics.meetings])
    assert await admin.ensure() == []
    await admin.close()
    code, out, err = await why(missing, "m-1")
    assert (code, out) == (1, [])
    assert err == ["router: topic 'no.such.topic' does not exist on the broker"]

    port = free_port()
    absent = write_config(tmp_path, public_key_file, bootstrap_servers=f"127.0.0.1:{port}")
    code, out, err = await why(absent, "m-1")
    assert (code, out) == (1, [])
    assert err == [f"router: cannot read from the broker at 127.0.0.1:{port}: KafkaConnectionError"]
