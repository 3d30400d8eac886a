"""How long `router why` takes on full topics: `python bench/why_story.py` (see bench/README.md).

Starts an embedded broker on a free loopback port, fills the meetings, decisions, recordings
and dead-letter topics with `--records` messages each (10,000 meetings keyed as the router
keys them, one of which is the meeting asked about), then times `router why MEETING --json`
as an operator runs it (a new process: Python start-up and imports included) and
`router.story.read_story` in-process, and checks that the story holds every record of the
meeting. Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.feed import create_topics
from router.broker import EmbeddedBroker, free_port
from router.config import KafkaConfig, load_config
from router.core.story import TOPICS
from router.kafka import Outgoing, Publisher, TopicAdmin
from router.story import read_story

ASKED = "m-asked-about"
MEETINGS = 10_000
TARGET_SECONDS = 2.0
CONFIG = """\
sources:
  - name: realtimekit
    path: /webhooks/realtimekit
    signature: {{scheme: rtk-rsa}}
kafka:
  bootstrap_servers: {bootstrap}
  partitions: {partitions}
  idempotent: false
"""


def say(line: str = "") -> None:
    print(line, flush=True)


def value(topic: str, meeting_id: str, n: int) -> bytes:
    """A record of about the size the router writes on `topic`."""
    common: dict[str, object] = {
        "meeting_id": meeting_id,
        "session_id": f"session-{n % 97}-{meeting_id}",
    }
    if topic == "meetings":
        record = common | {
            "type": "participant.joined",
            "version": 1,
            "title": "Weekly sync",
            "participant": {"peer_id": f"peer-{n}", "display_name": "Mary Sue"},
            "participants_present": n % 7,
            "received_at": "2026-06-03T10:05:01.250Z",
        }
    elif topic == "decisions":
        why = {"rule": "board", "matched": False, "why": "meeting.title 'Weekly sync' no"}
        record = common | {
            "type": "policy.decision",
            "trigger": "meeting.participantJoined",
            "outcome": "no_match",
            "rule": None,
            "policy_version": "0123456789ab",
            "explanation": [why, why | {"rule": "big"}],
            "decided_at": "2026-06-03T10:05:01.250Z",
        }
    elif topic == "recordings":
        record = common | {
            "type": "recording.status_changed",
            "recording_id": f"rec-{n}",
            "status": "RECORDING",
            "previous_status": "INVOKED",
            "source": "webhook",
        }
    else:
        record = {"event": "meeting.participantLeft", "meeting": {"id": meeting_id}}
    return json.dumps(record).encode()


async def fill(kafka: KafkaConfig, bootstrap: str, records: int, asked_each: int) -> None:
    """`records` messages on each topic; every records/asked_each-th one is the asked meeting."""
    names = [getattr(kafka.topics, topic) for topic in TOPICS]
    await create_topics(bootstrap, dict.fromkeys(names, kafka.partitions))
    admin = TopicAdmin(kafka, bootstrap, names)
    publisher = Publisher(kafka, bootstrap, admin)
    await publisher.start()
    every = max(records // asked_each, 1)
    try:
        for topic, name in zip(TOPICS, names, strict=True):
            batch: list[Outgoing] = []
            for n in range(records):
                meeting_id = ASKED if n % every == every - 1 else f"m-{n % MEETINGS}"
                headers = [("router-error", b"bench")] if topic == "dead_letter" else []
                batch.append(
                    Outgoing(name, meeting_id.encode(), value(topic, meeting_id, n), headers)
                )
                if len(batch) == 5_000 or n == records - 1:
                    unsent = await publisher.send_all(batch, timeout=60)
                    assert not unsent.messages, unsent.error
                    batch = []
    finally:
        await publisher.stop()
        await admin.close()


def time_command(config: Path, runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds of `router why ASKED --json`, each run a new process."""
    seconds, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "router.cli", "why", ASKED, "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert done.returncode == 0, done.stderr
    return seconds, cpu


async def measure(args: argparse.Namespace, workdir: Path) -> int:
    broker = EmbeddedBroker(port=free_port())
    await broker.start()
    try:
        config = workdir / "why.yaml"
        config.write_text(
            CONFIG.format(bootstrap=broker.bootstrap_servers, partitions=args.partitions)
        )
        kafka = load_config(str(config)).settings.kafka
        began = time.perf_counter()
        await fill(kafka, broker.bootstrap_servers, args.records, args.asked)
        say(
            f"filled 4 topics x {args.records:,} records ({args.partitions} partitions each, "
            f"{MEETINGS:,} meetings) in {time.perf_counter() - began:.1f} s"
        )
        in_process = []
        for _ in range(args.runs):
            began = time.perf_counter()
            story = await read_story(kafka, ASKED)
            in_process.append(time.perf_counter() - began)
        assert len(story.entries) == 4 * args.asked, len(story.entries)
        command, cpu = await asyncio.to_thread(time_command, config, args.runs)
    finally:
        await broker.stop()
    say(f"story of {ASKED}: {len(story.entries)} entries, {story.verdict and story.verdict.line()}")
    for label, seconds in (
        ("read_story, in-process", in_process),
        ("router why, a process", command),
    ):
        say(
            f"{label:24} median {statistics.median(seconds):.2f} s "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {len(seconds)} runs)"
        )
    say(
        f"{'router why, CPU':24} median {statistics.median(cpu):.2f} s of CPU per run "
        f"(the figure least disturbed by other load on the machine)"
    )
    worst = max(command)
    verdict = "meets" if worst < TARGET_SECONDS else "MISSES"
    say(f"target: under {TARGET_SECONDS:.0f} s: {verdict} (slowest run {worst:.2f} s)")
    return 0 if worst < TARGET_SECONDS else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="messages on each topic")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of each topic")
    parser.add_argument("--asked", type=int, default=25, help="records of the meeting asked about")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="rtk-why-") as workdir:
        return asyncio.run(measure(args, Path(workdir)))


if __name__ == "__main__":
    sys.exit(main())
