"""The worker: a consumer-group member on the webhooks topic that processes each meeting's
events in order, different meetings concurrently, and commits an offset only once everything
its message caused is acknowledged by the broker.

Each meeting gets a lane (a queue drained by one task), so one meeting's slow RTK retries hold
up nobody else. Offsets complete out of order and `PartitionOffsets` says how far a partition
may be committed. Per-meeting state is written to the compacted state topic, on the same
partition number as the meeting's webhooks, and restored from there when a partition is
assigned: after a restart, or when a rebalance moves it to another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from router.clock import monotonic
from router.config import Settings
from router.core.meeting_state import MeetingState
from router.core.offsets import PartitionOffsets
from router.errors import PublishError
from router.kafka import (
    BROKER_ERRORS,
    Consumer,
    Message,
    Publisher,
    Record,
    partition_counts,
    read_partitions,
)
from router.metrics import Metrics
from router.processing import Processed, Processor

log = logging.getLogger("router.worker")
_RESTORE_ERRORS: tuple[type[BaseException], ...] = (*BROKER_ERRORS, TimeoutError)


class Worker:
    """Consumes, dispatches to per-meeting lanes, publishes, commits."""

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
        self._states: dict[str, MeetingState] = {}
        self._partition_of: dict[str, int] = {}
        # Meetings whose session is over, and when that was last seen (see `_forget_ended`).
        self._ended: dict[str, float] = {}
        self._offsets: dict[int, PartitionOffsets] = {}
        # Partitions whose meeting states are back (see `_restored_only`).
        self._restored: set[int] = set()
        # Partitions being given away: what is in flight finishes (state writes included),
        # nothing more of them is dispatched.
        self._revoking: set[int] = set()
        self._restore_done = asyncio.Event()
        self._lanes: dict[str, asyncio.Queue[tuple[Record, PartitionOffsets]]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._paused = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.status = "starting"

    @property
    def meetings(self) -> int:
        """How many meetings' states are held."""
        return len(self._states)

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._task = asyncio.create_task(self._run(), name="worker")

    async def stop(self, grace: float) -> None:
        """Stop fetching, let in-flight events finish (up to `grace` s), commit, leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace + 5)
            except TimeoutError:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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
        next_lag = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    batch = await self._fetch()
                except BROKER_ERRORS as exc:
                    log.warning("fetch failed", extra={"error": type(exc).__name__})
                    await self._sleep(1.0)
                    continue
                for record in await self._restored_only(batch):
                    self._dispatch(record)
                self._apply_backpressure()
                await self._commit()
                if monotonic() >= next_lag:
                    next_lag = monotonic() + 5.0
                    await self._drop_positions_of_new_logs(list(self._offsets))
                    await self._forget_ended()
                    await self._report_lag()
            await self._drain(self._settings.server.shutdown_grace_seconds)
            await self._commit()
        finally:
            with contextlib.suppress(*BROKER_ERRORS):
                await self._consumer.stop()
            for task in list(self._lane_tasks):
                task.cancel()

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

    async def _fetch(self) -> list[Record]:
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

    async def _restored_only(self, batch: list[Record]) -> list[Record]:
        """The batch, once the state of every partition in it is restored.

        aiokafka hands out records of a newly assigned partition while the assignment callback
        (which restores the state) is still running. Processed then, an event would see no
        state, and the restore would overwrite what it did and reset its offset tracking. So
        such records wait. Records of a partition taken away meanwhile are dropped, never
        dispatched: its new owner reads them again from the committed offset.
        """
        while not self._stopping.is_set():
            waiting = {r.partition for r in batch} - self._restored
            if not waiting & {p for _, p in self._consumer.assignment()}:
                break
            self._restore_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._restore_done.wait(), 0.5)
        usable = self._restored - self._revoking
        return [r for r in batch if r.partition in usable]

    def _dispatch(self, record: Record) -> None:
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
        self._in_flight += 1
        lane_key = (
            record.key.decode("utf-8", "replace")
            if record.key
            else f"\x00{record.partition}/{record.offset}"
        )
        queue = self._lanes.get(lane_key)
        if queue is None:
            queue = asyncio.Queue()
            self._lanes[lane_key] = queue
            task = asyncio.create_task(self._lane(lane_key, queue))
            self._lane_tasks.add(task)
            task.add_done_callback(self._lane_tasks.discard)
        queue.put_nowait((record, tracker))

    async def _lane(
        self, lane_key: str, queue: asyncio.Queue[tuple[Record, PartitionOffsets]]
    ) -> None:
        while True:
            try:
                record, tracker = queue.get_nowait()
            except asyncio.QueueEmpty:
                del self._lanes[lane_key]
                return
            await self._handle(record)
            # (the tracker it was dispatched under: a log started again has a new one)
            tracker.done(record.offset)
            self._in_flight -= 1

    async def _handle(self, record: Record) -> None:
        meeting_id = record.key.decode("utf-8", "replace") if record.key else None
        state = self._states.get(meeting_id) if meeting_id else None
        try:
            processed = await self._processor.process(record, state)
        except Exception as exc:  # a bug: dead-letter the event rather than wedge the partition
            log.exception("processing failed", extra={"offset": record.offset})
            processed = self._processor.dead_letter(
                record, meeting_id, f"internal error: {type(exc).__name__}", "worker"
            )
        await self._publish(processed, record.partition)
        if processed.meeting_id is not None and processed.state is not None:
            self._states[processed.meeting_id] = processed.state
            self._partition_of[processed.meeting_id] = record.partition
            self._note_ended(processed.meeting_id, processed.state)

    async def _publish(self, processed: Processed, partition: int) -> None:
        """The records first, then the meeting's state: state that says "processed" must never
        be on the log while a record of that processing could still be missing."""
        await self._publish_all(list(processed.messages))
        if partition not in self._restored:
            # The partition moved to another instance while this event was in flight: its
            # new owner's state is the one that counts; ours must not overwrite it.
            return
        if processed.meeting_id is not None and processed.state is not None:
            state = Message(
                self._kafka.topics.state,
                processed.meeting_id.encode(),
                processed.state.to_json(),
                [],
                partition=partition,
            )
            await self._publish_all([state])

    async def _publish_all(self, messages: list[Message]) -> None:
        # The effects already happened: keep the records and try until the broker takes them.
        # The offset stays uncommitted meanwhile, so a crash replays rather than loses them.
        delay = 0.2
        pending = messages
        while pending:
            results = await asyncio.gather(
                *(
                    self._publisher.publish_many([m], self._kafka.ack_timeout_seconds)
                    for m in pending
                ),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, PublishError):
                    raise result
            pending = [m for m, r in zip(pending, results, strict=True) if r is not None]
            if pending:
                log.warning("publishing failed; retrying", extra={"messages": len(pending)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _apply_backpressure(self) -> None:
        limit = self._settings.worker.max_in_flight
        parts = self._consumer.assignment()
        if not self._paused and self._in_flight >= limit:
            self._consumer.pause(parts)
            self._paused = True
        elif self._paused and self._in_flight < limit // 2:
            self._consumer.resume(parts)
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
        delay = 0.5
        while True:
            # No event of these partitions may be processed before their state is back.
            try:
                restored = await self._restore(partitions)
                break
            except _RESTORE_ERRORS as exc:
                log.warning("restoring state failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for meeting_id, (partition, _) in restored.items():
            self._partition_of[meeting_id] = partition
        self._states.update((m, state) for m, (_, state) in restored.items())
        for meeting_id, (_, state) in restored.items():
            self._note_ended(meeting_id, state)
        for partition in partitions:
            self._offsets[partition] = PartitionOffsets()
        self._restored.update(partitions)
        self._restore_done.set()
        self.status = "ok" if self._restored else "no partitions assigned"
        log.info(
            "partitions assigned",
            extra={
                "partitions": partitions,
                "meetings_restored": len(restored),
                "restore_ms": round((monotonic() - started) * 1000),
            },
        )

    async def _restore(self, partitions: list[int]) -> dict[str, tuple[int, MeetingState]]:
        """The newest state of each meeting of these partitions, from the state topic, read
        a batch at a time with the event loop free in between (webhooks keep being
        answered during a long restore)."""
        restored: dict[str, tuple[int, MeetingState]] = {}
        topic = self._kafka.topics.state
        async for batch in read_partitions(self._kafka, self._bootstrap, topic, partitions):
            for record in batch:
                if record.key is None:
                    continue
                meeting_id = record.key.decode("utf-8", "replace")
                state = self._decode_state(record)
                if state is None:
                    restored.pop(meeting_id, None)
                else:
                    restored[meeting_id] = (record.partition, state)
            await asyncio.sleep(0)
        return restored

    def _decode_state(self, record: Record) -> MeetingState | None:
        """A state record's meeting state; None for a tombstone, or for a corrupt record,
        which is counted and logged rather than left to stop the partition."""
        if record.value is None:
            return None
        try:
            return MeetingState.from_json(record.value)
        except ValueError as exc:
            self._metrics.state_records_invalid.inc()
            log.warning(
                "state record skipped: it cannot be decoded",
                extra={
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": type(exc).__name__,
                },
            )
            return None

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
        gone = set(partitions)
        for meeting_id in [m for m, p in self._partition_of.items() if p in gone]:
            self._states.pop(meeting_id, None)
            self._ended.pop(meeting_id, None)
            del self._partition_of[meeting_id]
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

    def _note_ended(self, meeting_id: str, state: MeetingState) -> None:
        if state.is_over:
            self._ended[meeting_id] = monotonic()
        else:
            self._ended.pop(meeting_id, None)

    async def _forget_ended(self) -> None:
        """Tombstone the state of meetings over for longer than the grace period, on the
        state topic first and then in memory, so that state stays bounded by live meetings.
        (Runs between fetches: no event of these meetings can be dispatched meanwhile.)"""
        cutoff = monotonic() - self._settings.worker.ended_state_grace_seconds
        due = [
            m
            for m, since in self._ended.items()
            if since <= cutoff
            and m not in self._lanes
            and self._partition_of.get(m) in self._restored
        ]
        if not due:
            return
        tombstones = [
            Message(self._kafka.topics.state, m.encode(), None, [], partition=self._partition_of[m])
            for m in due
        ]
        await self._publish_all(tombstones)
        for meeting_id in due:
            self._states.pop(meeting_id, None)
            self._partition_of.pop(meeting_id, None)
            self._ended.pop(meeting_id, None)
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
