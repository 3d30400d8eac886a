"""`router backtest`: a candidate policy replayed over the webhooks log, calling nothing, and
its decisions compared with those recorded on the decisions topic (SPEC 9.4).

The replay is the worker's own processing (`router.processing.Processor`: the envelope, the
event parsing, the handlers, the meeting state and the decision flow) on fresh in-memory
meeting states, with a `RecordingApi` that calls nothing (`Replay`):
- a participant's preset is the one the recorded decision for the same delivery had, else
  unknown;
- RTK has no active recording beyond what the replayed state knows, so a start in enforce mode
  is `started` when the session has no recording yet and `already_recording` when it has
  (shadow mode gives `shadow`, as in the worker); the recording it "starts" is named
  `backtest-<n>` and keeps the status `INVOKED` until the candidate stops it;
- a stop of a recording the replayed state knows is `stopped`, of none `not_recording`.
The candidate's mode is its `policy.mode`, API token or not: nothing is called either way.

The status updates of the recordings the recorded decisions started are left out of the replay:
they are what the recorded policy caused, and a candidate that would have started later (or
never) must not learn of them. Recordings started elsewhere (by hand, by RTK's
`record_on_start`) are replayed like any other event.

Both topics are keyed by meeting id, so partitions replay independently: one process per
usable core replays its share of them and the comparisons are merged in partition order. When
both topics have as many partitions the decisions of a partition are read just before its
webhooks: a process holds at most two partitions' decisions and one partition's meeting states
at a time (otherwise one process reads every decision first). The reading runs ahead of the
replay by at most `READ_AHEAD` fetched batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from handlers import Ports
from router import envelope
from router.clock import now
from router.config import KafkaConfig, Settings
from router.core.backtest import Comparison, Decided, decided, read_decision
from router.core.entities import RecordingInfo
from router.core.events import RecordingStatusUpdate, parse_event
from router.core.meeting_state import MeetingState
from router.core.policy import Policy
from router.core.records import PolicyDecision
from router.errors import InvalidEvent
from router.kafka import Consumed, partition_counts, read_partitions, reader_bootstrap
from router.metrics import Metrics
from router.processing import Handled, Processor, Waiting
from router.rtk_models import RtkRecording, RtkSession
from router.service import run_loop

# Fetched batches (of up to 1,000 messages) the reading may be ahead of the replay.
READ_AHEAD = 8
# What comes from the reading: a partition's recorded decisions, then its webhooks in
# batches; None at the end, or the exception that ended it.
_Read = dict[str, Decided] | list[Consumed] | Exception | None
# What a recording the candidate starts is called (`backtest-1`, `backtest-2`, ...).
RECORDING_PREFIX = "backtest-"


class Replay:
    """A `RecordingApi` that calls nothing (see the module's docstring)."""

    def __init__(self) -> None:
        self.preset: str | None = None  # the recorded preset for the delivery being replayed
        self._ids = itertools.count(1)

    async def preset_of(self, meeting_id: str, custom_participant_id: str) -> str | None:
        return self.preset

    async def active_recording(self, meeting_id: str) -> RtkRecording | None:
        return None

    async def start_recording(self, meeting_id: str, params: Mapping[str, Any]) -> RtkRecording:
        return RtkRecording(f"{RECORDING_PREFIX}{next(self._ids)}", "INVOKED", meeting_id, None)

    async def stop_recording(self, recording_id: str) -> RtkRecording | None:
        return RtkRecording(recording_id, "UPLOADING", None, None)

    async def active_session(self, meeting_id: str) -> RtkSession | None:
        return None  # (reconciliation: nothing is replayed from it)

    async def get_recording(self, recording_id: str) -> RecordingInfo | None:
        return None


Group = tuple[list[int], list[int]]  # partitions of the decisions topic, of the webhooks topic


def backtest(
    settings: Settings,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    jobs: int | None = None,
    app: str | None = None,
) -> Comparison:
    """Replay the webhooks received between `since` and `until` (inclusive; None: no bound)
    with `settings`' policy and compare, in `jobs` processes (default: one per core usable)
    that share the partitions out; with `app` (the apps form), that app's webhooks only.
    `LookupError` names a topic that does not exist."""
    groups = run_loop(partition_groups(settings))
    jobs = min(jobs or len(os.sched_getaffinity(0)), len(groups))
    if jobs <= 1:
        return Comparison.merged(run_loop(replay_groups(settings, groups, since, until, app)))
    shares = [groups[job::jobs] for job in range(jobs)]
    # Forked before any event loop or Kafka client runs here: each process has its own.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        runs = [pool.submit(_replay_share, settings, share, since, until, app) for share in shares]
        done = [run.result() for run in runs]
    # Group `at` is the `at // jobs`-th of process `at % jobs`: merged in partition order.
    return Comparison.merged([done[at % jobs][at // jobs] for at in range(len(groups))])


def _replay_share(
    settings: Settings,
    groups: list[Group],
    since: dt.datetime | None,
    until: dt.datetime | None,
    app: str | None,
) -> list[Comparison]:
    return run_loop(replay_groups(settings, groups, since, until, app))


async def partition_groups(settings: Settings) -> list[Group]:
    """The partitions to replay together: each partition with its namesake of the decisions
    topic when both topics have as many, else all with all."""
    kafka, topics = settings.kafka, settings.kafka.topics
    counts = await partition_counts(
        kafka, reader_bootstrap(kafka), [topics.webhooks, topics.decisions]
    )
    for topic, count in counts.items():
        if count is None:
            raise LookupError(f"topic {topic!r} does not exist on the broker")
    webhooks, decisions = counts[topics.webhooks] or 0, counts[topics.decisions] or 0
    if webhooks == decisions:
        return [([p], [p]) for p in range(webhooks)]
    return [(list(range(decisions)), list(range(webhooks)))]


async def replay_groups(
    settings: Settings,
    groups: Sequence[Group],
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    app: str | None = None,
) -> list[Comparison]:
    """Replay the groups one after another: a comparison for each."""
    kafka, topics = settings.kafka, settings.kafka.topics
    bootstrap = reader_bootstrap(kafka)
    replay = Replayer(settings, since=since, until=until, app=app)
    # Reading runs ahead of the replay by a few fetched batches, so that its waits on the
    # broker (connecting, the last short read of each partition) overlap the replay's CPU.
    ahead: asyncio.Queue[_Read] = asyncio.Queue(READ_AHEAD)

    async def read() -> None:
        try:
            for decision_parts, webhook_parts in groups:
                await ahead.put(await _recorded(kafka, bootstrap, topics.decisions, decision_parts))
                async for batch in read_partitions(
                    kafka, bootstrap, topics.webhooks, webhook_parts
                ):
                    await ahead.put(batch)
            await ahead.put(None)
        except Exception as exc:  # (raised again by the replay below)
            await ahead.put(exc)

    done: list[Comparison] = []  # one for each group before the one being replayed
    begun = False
    reading = asyncio.ensure_future(read())
    try:
        while (item := await ahead.get()) is not None:
            if isinstance(item, Exception):
                raise item
            if isinstance(item, dict):
                if begun:
                    done.append(replay.comparison)
                begun = True
                replay.begin(item)
                continue
            for message in item:
                await replay.event(message)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    if begun:
        done.append(replay.comparison)
    return done


async def _recorded(
    kafka: KafkaConfig, bootstrap: str, topic: str, partitions: list[int]
) -> dict[str, Decided]:
    """The decisions of some partitions of the decisions topic, by delivery id."""
    recorded: dict[str, Decided] = {}
    async for batch in read_partitions(kafka, bootstrap, topic, partitions):
        for message in batch:
            found = read_decision(message.value)
            if found is not None:
                recorded[found.delivery_id] = found
    return recorded


class Replayer:
    """One replay: the processor, the meeting states of the partitions being replayed, and
    the comparison so far. Fed the recorded decisions (`begin`), then the webhooks (`event`).

    Each app's webhooks are judged by that app's candidate policy; with `app`, only that app's
    webhooks are replayed (the apps form)."""

    def __init__(
        self,
        settings: Settings,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        app: str | None = None,
    ) -> None:
        self.comparison = Comparison()
        self._since, self._until = since, until
        self._api = Replay()
        self._topics = settings.kafka.topics
        metrics = Metrics()
        apps = settings.app_settings()
        ports = {
            each.name: Ports(
                policy=Policy.from_config(each.policy),
                mode=each.policy.mode,
                rtk=self._api,
                metrics=metrics,
                now=now,
                app=each.name,
            )
            for each in apps
        }
        self._app = app
        self._sources = {source: each.name for each in apps for source in each.sources}
        self._processor = Processor(
            topics=self._topics,
            ports=ports[apps[0].name],
            metrics=metrics,
            now=now,
            apps=ports,
            sources=self._sources,
        )
        self._recorded: dict[str, Decided] = {}
        self._recorded_recordings: set[str] = set()
        self._states: dict[str, MeetingState] = {}

    def begin(self, recorded: dict[str, Decided]) -> None:
        """Start on partitions whose recorded decisions are these, with fresh states and a
        fresh comparison."""
        self.comparison = Comparison()
        self._recorded = recorded
        self._recorded_recordings = {
            d.recording_id for d in recorded.values() if d.outcome == "started" and d.recording_id
        }
        self._states = {}

    async def event(self, message: Consumed) -> None:
        """Replay one message of the webhooks log (outside the time window: skip it)."""
        logged = envelope.open_logged(message)
        at = logged.received_at or dt.datetime.fromtimestamp(message.timestamp_ms / 1000, dt.UTC)
        if (self._since and at < self._since) or (self._until and at > self._until):
            return
        if self._app is not None and (logged.app or self._sources.get(logged.source)) != self._app:
            return
        self.comparison.events += 1
        if self._caused_by_recorded(message):
            return
        recorded = self._recorded.get(logged.delivery_id)
        self._api.preset = recorded.preset if recorded else None
        done = self._processor.handle(logged, self._states.get(logged.meeting_id or ""))
        if isinstance(done, Waiting):
            done = await self._processor.complete(done)
        candidate = None
        if isinstance(done, Handled):
            self._states[done.meeting_id] = done.state
            for record in done.result.records:
                if isinstance(record, PolicyDecision):
                    candidate = decided(record)
        else:
            if done.meeting_id is not None and done.state is not None:
                self._states[done.meeting_id] = done.state
            for out in done.messages:
                if out.topic == self._topics.dead_letter:
                    self.comparison.add_malformed(_malformed(message, out.headers))
        self.comparison.add(recorded, candidate)

    def _caused_by_recorded(self, message: Consumed) -> bool:
        """Whether the message is a status update of a recording a recorded decision started."""
        if not self._recorded_recordings:
            return False
        if dict(message.headers).get(envelope.EVENT) != b"recording.statusUpdate":
            return False
        try:
            payload = json.loads(message.value or b"")
            event = parse_event(payload) if isinstance(payload, dict) else None
        except (ValueError, RecursionError, InvalidEvent):
            return False  # (the replay shows it as malformed)
        return (
            isinstance(event, RecordingStatusUpdate)
            and event.recording.id in self._recorded_recordings
        )


def _malformed(message: Consumed, headers: Sequence[tuple[str, bytes]]) -> str:
    why = dict(headers).get(envelope.ERROR, b"").decode("utf-8", "replace")
    return f"{message.topic}/{message.partition}/{message.offset}: {why}"
