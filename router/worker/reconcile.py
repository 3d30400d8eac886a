"""Reconciliation: the worker's picture of its meetings checked against RTK's, for the webhooks
that never came.

Every `reconcile.interval_seconds`, each meeting of the partitions the worker owns that it
believes live gets a round (`RoundSchedule`, spread over the interval): `GET active-session`,
and `GET /recordings/{id}` for each of its recordings in a non-final status that has had no
update since the meeting's previous round. Calls are paced under
`reconcile.max_calls_per_minute` (`CallPacer`) and pass the RTK client's own rate limit; each
makes one attempt, a 429 or 5xx pauses every call (honouring `Retry-After`, growing while they
last), and a 401/403 stops reconciliation with one log line and a readiness reason.

The calls run in tasks of their own, never in the worker's loop. An answer that changes the
picture becomes a `Synthetic` event of the meeting, remembered with the meeting's state as it
was when RTK was asked; the worker takes these events at the start of its next batch
(`take`) and processes them like webhooks, in the meeting's order, with the state written
before anything is committed. An event whose meeting has moved on meanwhile (another event
changed its state, or it waits on RTK in a lane, or its partition went to another instance) is
dropped as `stale`: the next round asks again. So a finding never races the meeting's webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Collection, Container
from dataclasses import dataclass

from router import clock
from router.backoff import Backoff
from router.config import ReconcileConfig
from router.core.entities import RecordingInfo
from router.core.meeting_state import MeetingState
from router.core.offsets import PartitionOffsets
from router.core.reconcile_schedule import CallPacer, RoundSchedule
from router.core.reconciliation import (
    LiveSession,
    ReconcileEvent,
    RecordingPolled,
    SessionChecked,
    is_live,
    is_news,
    open_recordings,
    session_verdict,
)
from router.decision_driver import RecordingApi
from router.errors import RtkApiError
from router.metrics import Metrics
from router.processing import Synthetic
from router.worker.states import MeetingStates
from router.worker.waiting import Entry

log = logging.getLogger("router.reconcile")

# The set of watched meetings is brought up to date at least this often.
SYNC_SECONDS = 1.0
# Calls in flight at once (each has the client's time-out): a slow RTK cannot pile up tasks.
MAX_IN_FLIGHT = 16
_STANDIN = PartitionOffsets()  # (synthetic events have no offset to commit)


@dataclass(frozen=True)
class _Check:
    """One call to make: about a meeting's session, or one of its recordings."""

    meeting_id: str
    partition: int
    snapshot: MeetingState
    recording_id: str | None = None


@dataclass(frozen=True)
class _Finding:
    partition: int
    snapshot: MeetingState
    event: ReconcileEvent
    at: dt.datetime
    check: str


class Reconciler:
    """Checks the owned meetings against RTK and hands what it finds to the worker."""

    def __init__(
        self,
        config: ReconcileConfig,
        api: RecordingApi | None,
        states: MeetingStates,
        metrics: Metrics,
        *,
        owned: Callable[[], Collection[int]],
        api_of: Callable[[str | None], RecordingApi | None] | None = None,
        now: Callable[[], dt.datetime] = clock.now,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self._config = config
        self._api = api
        # Each meeting is checked with its app's client (`api` alone: the single-app form).
        self._api_of = api_of
        self._states = states
        self._metrics = metrics
        self._owned = owned
        self._now = now
        self._monotonic = monotonic
        self._found: deque[_Finding] = deque()
        # (meeting, recording) -> the status it had at the meeting's last round, and since when
        self._statuses: dict[tuple[str, str], tuple[str, float]] = {}
        self._backoff = Backoff(base=max(config.interval_seconds / 10, 1.0), cap=300.0)
        self._failures = 0
        self._pacer = CallPacer(config.max_calls_per_minute)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refused: str | None = None
        # Apps of the `apps` form whose calls RTK refused: their meetings are no longer checked,
        # and the other apps' go on (the router stays ready: it still serves their webhooks).
        self._refused_apps: set[str] = set()

    def start(self) -> None:
        """Run in the background until `stop`; nothing when off or without an RTK client."""
        if not self._config.enabled:
            log.info("reconciliation is off (reconcile.interval_seconds: 0)")
            return
        if self._api is None and self._api_of is None:
            log.info("reconciliation is off: no realtimekit.api_token")
            return
        self._task = asyncio.create_task(self._run(), name="reconcile")

    async def stop(self) -> None:
        """Stop asking; calls in flight are abandoned (the next owner asks again)."""
        self._stopping.set()
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def ready(self) -> str | None:
        """None unless RTK refused reconciliation's calls (401/403): then why."""
        return self._refused

    @property
    def has_findings(self) -> bool:
        return bool(self._found)

    def take(self, busy: Container[str], owned: Collection[int]) -> list[Entry]:
        """The findings whose meeting is as it was when RTK was asked, as events to process
        now, before anything else of the batch; the others are dropped as stale."""
        entries = []
        while self._found:
            found = self._found.popleft()
            meeting_id = found.event.meeting_id
            current = self._states.get(meeting_id)
            if meeting_id in busy or found.partition not in owned or current is not found.snapshot:
                self._count(found.check, "stale", found.snapshot.app)
                continue
            synthetic = Synthetic.of(found.event, found.partition, found.at, source="reconcile")
            entries.append(Entry(synthetic, _STANDIN))
        return entries

    async def _run(self) -> None:
        schedule = RoundSchedule(self._config.interval_seconds)
        next_sync = 0.0
        while not self._stopping.is_set() and self._refused is None:
            now = self._monotonic()
            if now >= next_sync:
                schedule.watch(self._watched(), now)
                next_sync = now + min(SYNC_SECONDS, self._config.interval_seconds)
            meeting_id = schedule.pop_due(now)
            if meeting_id is None:
                due = schedule.next_due()
                await self._sleep(min(next_sync, due if due is not None else next_sync) - now)
                continue
            for check in self._checks(meeting_id, now):
                await self._call_when_paced(check)

    def _watched(self) -> list[str]:
        """The meetings of owned partitions believed live or with a recording not final;
        statuses remembered of meetings no longer watched are forgotten."""
        owned = set(self._owned())
        watched = [
            meeting_id
            for meeting_id, partition, state in self._states.items()
            if partition in owned and (is_live(state) or open_recordings(state))
        ]
        keep = set(watched)
        for key in [k for k in self._statuses if k[0] not in keep]:
            del self._statuses[key]
        return watched

    def _checks(self, meeting_id: str, now: float) -> list[_Check]:
        """This round's calls for a meeting: its session if believed live, and each recording
        whose status has not changed since the previous round, an interval ago."""
        state = self._states.get(meeting_id)
        if state is None or self._client(state) is None or state.app in self._refused_apps:
            return []
        partition = self._states.partition_of(meeting_id)
        checks = []
        if is_live(state):
            checks.append(_Check(meeting_id, partition, state))
        for recording_id, status in open_recordings(state):
            key = (meeting_id, recording_id)
            before = self._statuses.get(key)
            if before is None or before[0] != status:
                self._statuses[key] = (status, now)
            elif now - before[1] >= self._config.interval_seconds:
                checks.append(_Check(meeting_id, partition, state, recording_id))
        return checks

    async def _call_when_paced(self, check: _Check) -> None:
        while not self._pacer.take(now := self._monotonic()):
            await self._sleep(self._pacer.next_at(now) - now)
            if self._stopping.is_set() or self._refused is not None:
                return
        await self._slots.acquire()
        # The state is read again: an event since the round was planned is news to use.
        state = self._states.get(check.meeting_id) or check.snapshot
        task = asyncio.create_task(self._call(check, state, self._now()))
        self._tasks.add(task)
        task.add_done_callback(self._call_done)

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _call(self, check: _Check, state: MeetingState, at: dt.datetime) -> None:
        api = self._client(state)
        assert api is not None
        kind = "session" if check.recording_id is None else "recording"
        try:
            if check.recording_id is None:
                found = await api.active_session(check.meeting_id)
                session = LiveSession(found.id, found.live_participants) if found else None
                if found is not None and not found.live:
                    session = None
                outcome = self._session_found(check, state, session, at)
            else:
                polled = await api.get_recording(check.recording_id)
                outcome = self._recording_found(check, state, polled, at)
        except RtkApiError as exc:
            outcome = self._failed(kind, check, exc)
        except Exception:  # a bug: logged and counted, and the next round asks again
            log.exception("reconciliation check failed", extra={"meeting_id": check.meeting_id})
            outcome = "error"
        else:
            self._failures = 0
        self._count(kind, outcome, state.app)

    def _client(self, state: MeetingState) -> RecordingApi | None:
        """The RTK client of the meeting's app (None: it has no API token)."""
        return self._api if self._api_of is None else self._api_of(state.app)

    def _session_found(
        self, check: _Check, state: MeetingState, session: LiveSession | None, at: dt.datetime
    ) -> str:
        if not is_live(state) or state.session_id is None:
            return "stale"
        verdict = session_verdict(state, session)
        if verdict in ("ended", "new_session", "count"):
            event = SessionChecked(check.meeting_id, state.session_id, session)
            self._found.append(_Finding(check.partition, state, event, at, "session"))
        return verdict

    def _recording_found(
        self, check: _Check, state: MeetingState, polled: RecordingInfo | None, at: dt.datetime
    ) -> str:
        if polled is None:
            return "not_found"
        if polled.id != check.recording_id:
            log.warning(
                "reconciliation: RTK answered a recording with another id; ignored",
                extra={"meeting_id": check.meeting_id, "recording_id": check.recording_id},
            )
            return "invalid"
        if not is_news(state, polled):
            return "unchanged"
        event = RecordingPolled(check.meeting_id, polled)
        self._found.append(_Finding(check.partition, state, event, at, "recording"))
        return "ahead"

    def _failed(self, kind: str, check: _Check, exc: RtkApiError) -> str:
        status = exc.status
        app = check.snapshot.app
        if status in (401, 403) and self._api_of is not None and app is not None:
            if app not in self._refused_apps:
                self._refused_apps.add(app)
                log.error(
                    "reconciliation stopped for this app: RTK refused its calls with HTTP %s; "
                    "check its realtimekit.api_token and its permissions",
                    status,
                    extra={"app": app},
                )
            return "unauthorized"
        if status in (401, 403):
            if self._refused is None:
                self._refused = (
                    f"reconciliation stopped: RTK refused its calls with HTTP {status}; "
                    "check realtimekit.api_token and its permissions"
                )
                log.error(self._refused)
            return "unauthorized"
        if status is not None and 200 <= status < 300:
            log.warning(
                "reconciliation: RTK's answer is not of the documented shape; nothing changed",
                extra={"check": kind, "meeting_id": check.meeting_id, "error": str(exc)},
            )
            return "invalid"
        if status == 429 or exc.retriable:
            # Everything waits: RTK is busy or failing, and asking harder does not help.
            self._failures += 1
            wait = max(exc.retry_after or 0.0, self._backoff.delay(self._failures))
            self._pacer.pause_until(self._monotonic() + wait)
            log.warning(
                "reconciliation paused",
                extra={"check": kind, "error": str(exc), "wait_seconds": round(wait, 1)},
            )
            return "rate_limited" if status == 429 else "error"
        return "error"

    def _count(self, check: str, outcome: str, app: str | None) -> None:
        metrics = self._metrics.for_app(app)
        metrics.inc(metrics.reconcile, check, outcome)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), max(seconds, 0.0))
