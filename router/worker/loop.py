"""The worker's fetch-commit loop: a consumer-group member on the webhooks topic that handles
each fetched batch as a unit and commits an offset only once everything its message caused is
acknowledged by the broker.

A batch goes through four steps. **Decide**: the events run in offset order, each against its
meeting's state as the previous one left it; every event that needs no RTK call is finished
here, without awaiting anything. An event that does need RTK hands its meeting to
`WaitingMeetings`, which holds back that meeting's later events only. **Publish**: every record
of the batch is sent, and the acknowledgements awaited once, together. **Remember**: then each
touched meeting's last state, once, on the compacted state topic. **Commit**: the offsets up to
the first one still in flight (`PartitionOffsets` tracks them out of order).

States are restored from the state topic when a partition is assigned, after a restart or when
a rebalance moves it to another instance (`MeetingStates`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from router.backoff import Backoff
from router.clock import monotonic
from router.config import Settings
from router.core.offsets import PartitionOffsets
from router.core.terms import DeadLetter
from router.envelope import open_logged
from router.kafka import BROKER_ERRORS, Consumed, Consumer, Outgoing, Publisher, partition_counts
from router.metrics import Metrics
from router.processing import Processed, Processor, Waiting
from router.worker.reconcile import Reconciler
from router.worker.states import MeetingStates
from router.worker.waiting import Entry, WaitingMeetings

log = logging.getLogger("router.worker")
_RESTORE_ERRORS: tuple[type[BaseException], ...] = (*BROKER_ERRORS, TimeoutError)
# Offsets are committed at most this often (and on revoke and at shutdown): a commit is a
# broker round trip, and under light load a batch is a few events. A crash replays at most
# this much more, which the meetings' states recognise as already done.
COMMIT_INTERVAL_SECONDS = 0.2
# How long leaving the group may take at shutdown before the worker goes without it.
STOP_WAIT_SECONDS = 5.0
# Waits between attempts at something the broker must take (publishing, restoring).
BROKER_BACKOFF = Backoff(base=0.2, cap=5.0)


class Worker:
    """Consumes, decides a batch at a time, publishes, commits."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        publisher: Publisher,
        processor: Processor,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._kafka = settings.kafka
        self._bootstrap = bootstrap
        self._publisher = publisher
        self._processor = processor
        self._metrics = metrics
        self._consumer = Consumer(
            self._kafka,
            bootstrap,
            [self._kafka.topics.webhooks],
            group_id=self._kafka.group_id,
            on_assign=self._assigned,
            on_revoke=self._revoked,
        )
        self._states = MeetingStates(self._kafka, bootstrap, metrics)
        self._waiting = WaitingMeetings(self._carry_on, self._handle_held)
        self._offsets: dict[int, PartitionOffsets] = {}
        # Partitions whose meeting states are back (see `_restored_only`).
        self._restored: set[int] = set()
        # Partitions being given away: what is in flight finishes (state writes included),
        # nothing more of them is dispatched.
        self._revoking: set[int] = set()
        self._restore_done = asyncio.Event()
        self._paused = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.status = "starting"
        # (what it finds is taken at the start of each batch: see `_handle_batch`)
        self.reconciler = Reconciler(
            settings.reconcile,
            processor.rtk,
            self._states,
            metrics,
            owned=self._owned,
            api_of=processor.rtk_of,
        )

    @property
    def meetings(self) -> int:
        """How many meetings' states are held."""
        return len(self._states)

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._task = asyncio.create_task(self._run(), name="worker")
        self.reconciler.start()

    async def stop(self, grace: float) -> None:
        """Stop fetching, let in-flight events finish (up to `grace` s), commit, leave the group."""
        self._stopping.set()
        await self.reconciler.stop()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace + 5)
            except TimeoutError:
                # (a commit or a group leave that a restarted broker never answers: what is
                # not committed is replayed by the next owner)
                log.warning("the worker did not stop in time; leaving without its last commit")
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=STOP_WAIT_SECONDS)
        self._task = None

    async def ready(self) -> str | None:
        """None when consuming, else why not."""
        return None if self.status == "ok" else self.status

    async def _run(self) -> None:
        if not await self._topics_match():
            return
        while not self._stopping.is_set():
            try:
                await self._consumer.start()
                break
            except BROKER_ERRORS as exc:
                self.status = f"cannot join the consumer group: {type(exc).__name__}"
                await self._sleep(2.0)
        else:
            return
        self.status = "waiting for partitions"
        next_check = next_commit = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self._fetch()
                except BROKER_ERRORS as exc:
                    log.warning("fetch failed", extra={"error": type(exc).__name__})
                    await self._sleep(1.0)
                    continue
                usable = await self._restored_only(batch)
                if usable or self.reconciler.has_findings:
                    await self._handle_batch(usable)
                self._apply_backpressure()
                if monotonic() >= next_commit:
                    next_commit = monotonic() + COMMIT_INTERVAL_SECONDS
                    await self._commit()
                if monotonic() >= next_check:
                    next_check = monotonic() + 5.0
                    await self._drop_positions_of_new_logs(list(self._offsets))
                    await self._forget_ended()
                    await self._report_lag()
            await self._drain(self._settings.server.shutdown_grace_seconds)
            await self._commit()
        finally:
            self._waiting.cancel()
            with contextlib.suppress(*BROKER_ERRORS, TimeoutError):
                await asyncio.wait_for(self._consumer.stop(), STOP_WAIT_SECONDS)

    async def _topics_match(self) -> bool:
        """Whether the state topic has as many partitions as the webhooks topic (a meeting's
        state is kept on its webhooks' partition number); waits for both topics to exist."""
        topics = self._kafka.topics
        while not self._stopping.is_set():
            try:
                counts = await partition_counts(
                    self._kafka, self._bootstrap, [topics.webhooks, topics.state]
                )
            except BROKER_ERRORS as exc:
                self.status = f"cannot read topic metadata: {type(exc).__name__}"
                await self._sleep(2.0)
                continue
            webhooks, state = counts[topics.webhooks], counts[topics.state]
            if webhooks is None or state is None:
                missing = [t for t, n in counts.items() if n is None]
                self.status = f"waiting for topics: {', '.join(missing)}"
                await self._sleep(1.0)
                continue
            if webhooks == state:
                return True
            self.status = (
                f"the state topic {topics.state} has {state} partitions and the webhooks topic "
                f"{topics.webhooks} has {webhooks}: they must have the same number"
            )
            log.error("partition counts differ", extra={"reason": self.status})
            return False
        return False

    async def _fetch(self) -> list[Consumed]:
        """The next batch, or nothing when asked to stop: a fetch can block for seconds while
        the group rebalances, and shutdown must not wait for that."""
        fetch = asyncio.ensure_future(self._consumer.fetch(timeout=0.2))
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetch
            return []
        return fetch.result()

    async def _restored_only(self, batch: list[Consumed]) -> list[Consumed]:
        """The batch, once the state of every partition in it is restored.

        aiokafka hands out records of a newly assigned partition while the assignment callback
        (which restores the state) is still running. Processed then, an event would see no
        state, and the restore would overwrite what it did and reset its offset tracking. So
        such records wait. Records of a partition taken away meanwhile are dropped, never
        dispatched: its new owner reads them again from the committed offset.
        """
        while not self._stopping.is_set():
            waiting = {r.partition for r in batch} - self._restored
            if not waiting or not waiting & {p for _, p in self._consumer.assignment()}:
                break
            self._restore_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._restore_done.wait(), 0.5)
        usable = self._owned()
        return [r for r in batch if r.partition in usable]

    async def _handle_batch(self, batch: Sequence[Consumed]) -> None:
        """Decide every event of the batch that needs no RTK call, then publish all their
        records with one wait, then each touched meeting's last state, then mark them done."""
        published: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        messages: list[Outgoing] = []
        touched: dict[str, tuple[int, Processed]] = {}
        finished: list[Entry] = []
        # What reconciliation found goes first: it was found against the states as they are
        # now, before this batch changes them.
        found = self.reconciler.take(self._waiting, self._owned())
        for entry in [*found, *map(self._dispatch, batch)]:
            meeting_id = entry.logged.meeting_id
            if meeting_id is not None and meeting_id in self._waiting:
                self._waiting.hold(meeting_id, entry)
                continue
            stepped = self._step(entry)
            if isinstance(stepped, Waiting):
                self._waiting.wait(stepped, entry, published)
                continue
            messages.extend(stepped.messages)
            if stepped.meeting_id is not None and stepped.state is not None:
                self._states.put(stepped.meeting_id, entry.partition, stepped.state)
                touched[stepped.meeting_id] = (entry.partition, stepped)
            finished.append(entry)
        try:
            # The records first, then the states: state that says "processed" must never be on
            # the log while a record of that processing could still be missing.
            await self._publish_all(messages)
            await self._publish_all(self._state_messages(touched.values()))
        finally:
            published.set_result(None)
        for entry in finished:
            entry.done()

    def _owned(self) -> set[int]:
        """The partitions whose events may be processed here now."""
        return self._restored - self._revoking

    def _dispatch(self, record: Consumed) -> Entry:
        tracker = self._offsets.setdefault(record.partition, PartitionOffsets())
        if tracker.behind(record.offset):
            # A log never goes back: this partition's log is a new one (a broker that came
            # back empty). Positions of the old log must never be committed onto it.
            log.warning(
                "partition log started again; its old positions are dropped",
                extra={"partition": record.partition, "offset": record.offset},
            )
            tracker = self._offsets[record.partition] = PartitionOffsets()
        tracker.dispatched(record.offset)
        return Entry(open_logged(record), tracker)

    def _step(self, entry: Entry) -> Processed | Waiting:
        logged = entry.logged
        try:
            return self._processor.step(logged, self._states.get(logged.meeting_id))
        except Exception as exc:  # a bug: dead-letter the event rather than wedge the partition
            return self._internal_error(entry, exc)

    def _internal_error(self, entry: Entry, exc: Exception) -> Processed:
        logged = entry.logged
        log.error("processing failed", exc_info=exc, extra={"offset": logged.message.offset})
        why = DeadLetter(f"internal error: {type(exc).__name__}", "worker")
        return self._processor.dead_letter(logged, logged.meeting_id, why)

    async def _carry_on(
        self, waiting: Waiting, entry: Entry, published: asyncio.Future[None]
    ) -> None:
        """Finish an event that waited on RTK, once its batch's records (its meeting's earlier
        events among them) are on the log."""
        try:
            processed = await self._processor.resume(waiting)
        except Exception as exc:
            processed = self._internal_error(entry, exc)
        await asyncio.shield(published)
        await self._finish(processed, entry)

    async def _handle_held(self, entry: Entry) -> None:
        """A later event of a meeting that waited on RTK, in its lane."""
        logged = entry.logged
        try:
            processed = await self._processor.process(logged, self._states.get(logged.meeting_id))
        except Exception as exc:
            processed = self._internal_error(entry, exc)
        await self._finish(processed, entry)

    async def _finish(self, processed: Processed, entry: Entry) -> None:
        """Publish one event's records, then its meeting's state, then mark it done."""
        partition = entry.partition
        await self._publish_all(list(processed.messages))
        if processed.meeting_id is not None and processed.state is not None:
            self._states.put(processed.meeting_id, partition, processed.state)
            await self._publish_all(self._state_messages([(partition, processed)]))
        entry.done()

    def _state_messages(self, touched: Iterable[tuple[int, Processed]]) -> list[Outgoing]:
        # A partition that moved to another instance while its events were in flight: its new
        # owner's state is the one that counts; ours must not overwrite it.
        return [
            self._states.message(processed.meeting_id, partition, processed.state)
            for partition, processed in touched
            if processed.meeting_id is not None and partition in self._restored
        ]

    async def _publish_all(self, messages: list[Outgoing]) -> None:
        # The effects already happened: keep the records and try until the broker takes them.
        # The offsets stay uncommitted meanwhile, so a crash replays rather than loses them.
        delays = BROKER_BACKOFF.delays()
        pending = messages
        while pending:
            unsent = await self._publisher.send_all(pending, self._kafka.ack_timeout_seconds)
            pending = unsent.messages
            if pending:
                log.warning(
                    "publishing failed; retrying",
                    extra={"messages": len(pending), "error": unsent.error},
                )
                await asyncio.sleep(next(delays))

    def _apply_backpressure(self) -> None:
        """Stop fetching while too many events wait on RTK, or too many meetings do."""
        worker = self._settings.worker
        held, meetings = self._waiting.held, len(self._waiting)
        if not self._paused and (
            held >= worker.max_in_flight or meetings >= worker.max_waiting_meetings
        ):
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
        elif (
            self._paused
            and held * 2 < worker.max_in_flight
            and meetings * 2 < worker.max_waiting_meetings
        ):
            self._consumer.resume(self._consumer.assignment())
            self._paused = False

    async def _commit(self, partitions: Iterable[int] | None = None) -> None:
        chosen = self._offsets.keys() if partitions is None else partitions
        topic = self._kafka.topics.webhooks
        positions = {}
        for partition in list(chosen):
            tracker = self._offsets.get(partition)
            position = tracker.commit_position() if tracker else None
            if position is not None:
                positions[(topic, partition)] = position
        if not positions:
            return
        try:
            await self._consumer.commit(positions)
        except BROKER_ERRORS as exc:
            log.warning("commit failed; it is retried", extra={"error": type(exc).__name__})
            return
        # (committed only once the broker took it)
        for (_, partition), position in positions.items():
            self._offsets[partition].committed(position)

    async def _drain(self, grace: float, partitions: Iterable[int] | None = None) -> None:
        """Wait until the partitions' in-flight messages are done, or `grace` runs out."""
        chosen = set(self._offsets if partitions is None else partitions)
        deadline = monotonic() + grace
        while any(self._offsets[p].in_flight for p in chosen if p in self._offsets):
            if monotonic() >= deadline:
                log.warning("in-flight events left unfinished; they will be replayed")
                return
            await asyncio.sleep(0.05)

    async def _assigned(self, partitions: list[int]) -> None:
        started = monotonic()
        delays = BROKER_BACKOFF.delays()
        while True:
            # No event of these partitions may be processed before their state is back.
            try:
                restored = await self._states.restore(partitions)
                break
            except _RESTORE_ERRORS as exc:
                log.warning("restoring state failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(next(delays))
        for partition in partitions:
            self._offsets[partition] = PartitionOffsets()
        self._restored.update(partitions)
        self._restore_done.set()
        self.status = "ok" if self._restored else "no partitions assigned"
        log.info(
            "partitions assigned",
            extra={
                "partitions": partitions,
                "meetings_restored": restored,
                "restore_ms": round((monotonic() - started) * 1000),
            },
        )

    async def _revoked(self, partitions: list[int]) -> None:
        # The events in flight finish first, state writes included: an offset is committed
        # only with its state on the state topic, since the next owner restores from there.
        # (No other member is given these partitions before this callback returns.)
        self._revoking.update(partitions)
        await self._drain(self._settings.server.shutdown_grace_seconds, partitions)
        await self._drop_positions_of_new_logs(partitions)
        await self._commit(partitions)
        self._restored.difference_update(partitions)
        self._revoking.difference_update(partitions)
        self._states.drop_partitions(partitions)
        for partition in partitions:
            self._offsets.pop(partition, None)
        log.info("partitions revoked", extra={"partitions": partitions})

    async def _drop_positions_of_new_logs(self, partitions: Iterable[int]) -> None:
        """Forget the positions of partitions whose committed offset the broker has lost.

        A broker that came back empty has new, shorter logs and no committed offsets; a
        position of the old log committed onto the new one would skip webhooks it accepted.
        Such partitions are read again from their beginning.
        """
        ours = {
            p: t.committed_position
            for p in partitions
            if (t := self._offsets.get(p)) is not None and t.committed_position is not None
        }
        if not ours:
            return
        try:
            theirs = await self._consumer.committed(self._kafka.topics.webhooks, ours)
        except BROKER_ERRORS:
            return
        lost = [p for p, position in ours.items() if (theirs[p] or 0) < position]
        if not lost:
            return
        log.warning(
            "committed offsets lost by the broker; reading again", extra={"partitions": lost}
        )
        for partition in lost:
            self._offsets[partition] = PartitionOffsets()
        with contextlib.suppress(*BROKER_ERRORS, AssertionError):  # (no longer assigned)
            await self._consumer.seek_to_beginning(self._kafka.topics.webhooks, lost)

    async def _forget_ended(self) -> None:
        """Tombstone the state of meetings over for longer than the grace period, on the
        state topic first and then in memory, so that state stays bounded by live meetings.
        (Runs between batches: no event of these meetings can be dispatched meanwhile.)"""
        grace = self._settings.worker.ended_state_grace_seconds
        due = self._states.due(grace, busy=self._waiting, owned=self._restored)
        if not due:
            return
        await self._publish_all(
            [self._states.message(m, self._states.partition_of(m), None) for m in due]
        )
        for meeting_id in due:
            self._states.forget(meeting_id)
        log.info("ended meetings forgotten", extra={"meetings": len(due)})

    async def _report_lag(self) -> None:
        try:
            lag = await self._consumer.lag()
        except BROKER_ERRORS:
            return
        for partition, value in lag.items():
            self._metrics.consumer_lag.labels(partition=str(partition)).set(value)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
