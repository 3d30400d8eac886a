"""One webhook from the log, processed: parsed, recognised if already handled, handed to its
family's handler, and turned into the messages to publish (records, dead-letter, new state).

`step` goes as far as it can without RTK; an event whose decision needs RTK comes back
`Waiting`, and `resume` carries out its requests. `handle` and `complete` do the same but hand
back the handler's result as it is (`Handled`), before any message is built from it: what
`router backtest` compares. Nothing here produces or commits: the worker
publishes what comes back and commits the offset only after the broker acknowledged all of it.
A body already processed for the meeting (its SHA-256, remembered in the meeting's state)
yields nothing: RTK's retries and a replay after a crash do not decide twice.

A `Synthetic` event is one the router made itself (what reconciliation found): it goes through
the same handlers, records and state as a webhook, but has no body to remember or to
dead-letter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from handlers import Delivery, HandlerFlow, HandlerResult, Ports, handler_for
from router import envelope
from router.config import TopicsConfig
from router.core.delivery import RTK_EVENTS, meeting_key
from router.core.events import KnownEvent, RecordingStatusUpdate, UnknownEvent, parse_event
from router.core.meeting_state import MeetingState
from router.core.policy import Policy
from router.core.reconciliation import ReconcileEvent
from router.core.recording_state import DUPLICATE
from router.core.records import Record, cloudevent_headers, cloudevent_id
from router.core.redaction import redact_body
from router.core.rtk_requests import Request
from router.core.terms import DeadLetter, Mode
from router.decision_driver import RecordingApi, drive
from router.envelope import Logged
from router.errors import InvalidEvent
from router.kafka import Consumed, Outgoing
from router.metrics import Metrics

log = logging.getLogger("router.processing")


@dataclass(frozen=True)
class Synthetic(Logged):
    """An event of a meeting made by the router itself, handed to the worker as if logged
    (`message` is a stand-in on the meeting's partition, with no value)."""

    event: ReconcileEvent = field(kw_only=True)

    @classmethod
    def of(
        cls, event: ReconcileEvent, partition: int, at: dt.datetime, *, source: str
    ) -> Synthetic:
        """The event as found at `at`; its delivery id is `<source>:<meeting>:<at>` (to the
        microsecond: the records it causes take their `ce_id` from it)."""
        meeting_id = event.meeting_id
        time = at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return cls(
            message=Consumed("", partition, -1, meeting_id.encode(), None, (), 0),
            meeting_id=meeting_id,
            delivery_id=f"{source}:{meeting_id}:{time}",
            received_at=at,
            source=source,
            event=event,
        )


@dataclass(frozen=True)
class _Context:
    """One webhook being processed: what its result is built from."""

    logged: Logged
    event_name: str
    meeting_id: str
    state: MeetingState
    seen: str | None  # (what the state remembers of the body; None: a synthetic event)
    delivery: Delivery
    ports: Ports  # (those of the event's app)


@dataclass(frozen=True)
class Waiting:
    """An event whose handler waits on RTK: its first request and the rest of its flow
    (`Processor.resume` carries them out)."""

    context: _Context
    flow: HandlerFlow
    request: Request

    @property
    def meeting_id(self) -> str:
        return self.context.meeting_id


@dataclass(frozen=True)
class Handled:
    """An event its handler has handled: the result, before messages are built from it."""

    context: _Context
    result: HandlerResult

    @property
    def meeting_id(self) -> str:
        return self.context.meeting_id

    @property
    def state(self) -> MeetingState:
        """The meeting after the event, with the delivery remembered (a synthetic event has no
        delivery to remember)."""
        seen = self.context.seen
        return self.result.state if seen is None else self.result.state.mark_seen(seen)


@dataclass(frozen=True)
class Processed:
    """What became of one webhook: the meeting's new state (None: unchanged) and messages."""

    meeting_id: str | None
    state: MeetingState | None
    messages: tuple[Outgoing, ...] = field(default=())


class Processor:
    """Turns logged webhooks into records, by way of the handlers.

    Each app decides with its own ports (policy, mode, RTK client): a webhook's app is the one
    the receiver stamped on it (else its source's), a meeting's is the one its state holds.
    `ports` are the first app's, and those of an event of no known app.
    """

    def __init__(
        self,
        *,
        topics: TopicsConfig,
        ports: Ports,
        metrics: Metrics,
        now: Callable[[], dt.datetime],
        apps: Mapping[str | None, Ports] | None = None,
        sources: Mapping[str, str | None] | None = None,
    ) -> None:
        self._topics = topics
        self._topic_of = {
            "recording.status_changed": topics.recordings,
            "policy.decision": topics.decisions,
        }
        self._ports = ports
        self._apps = dict(apps) if apps is not None else {ports.app: ports}
        self._sources = dict(sources or {})
        self._metrics = metrics
        self._now = now

    @property
    def rtk(self) -> RecordingApi | None:
        """The RTK client the handlers use (None: no API token)."""
        return self._ports.rtk

    def rtk_of(self, app: str | None) -> RecordingApi | None:
        """The RTK client of an app (None: no API token, or no such app)."""
        ports = self._apps.get(app)
        return ports.rtk if ports is not None else None

    def use_policy(self, policy: Policy, mode: Mode, app: str | None = None) -> None:
        """Decide with `policy` from the next event on (a configuration reload)."""
        ports = replace(self._apps.get(app, self._ports), policy=policy, mode=mode)
        self._apps[app] = ports
        if app == self._ports.app:
            self._ports = ports

    def _ports_of(self, logged: Logged, state: MeetingState | None) -> Ports:
        if isinstance(logged, Synthetic):
            name = state.app if state is not None else None
        else:
            name = logged.app if logged.app is not None else self._sources.get(logged.source)
        return self._apps.get(name, self._ports)

    def step(self, logged: Logged, state: MeetingState | None) -> Processed | Waiting:
        """Process one webhook given the meeting's state before it, as far as it goes without
        RTK: the result, or the event `Waiting` on its first RTK request."""
        handled = self.handle(logged, state)
        return self._finish(handled) if isinstance(handled, Handled) else handled

    def handle(self, logged: Logged, state: MeetingState | None) -> Processed | Handled | Waiting:
        """`step`, with the handler's result handed back as it is (`Handled`); Processed for
        an event no handler takes (malformed, a duplicate, of an unknown type) or that failed."""
        if isinstance(logged, Synthetic):
            return self._handle_synthetic(logged, state)
        parsed = self._parse(logged)
        if isinstance(parsed, Processed):
            return parsed
        event, meeting_id = parsed
        ports = self._ports_of(logged, state)
        state = (state or MeetingState(meeting_id)).of_app(ports.app)
        seen = envelope.seen_key(logged.body)
        if state.has_seen(seen):
            self._metrics.inc(self._metrics.events, event.name, "duplicate")
            if isinstance(event, RecordingStatusUpdate):
                # A status RTK delivered twice is a dropped recording update like any other
                # repeated status, whichever check caught it.
                self._metrics.recording_updates_dropped.labels(reason=DUPLICATE).inc()
            return Processed(meeting_id, None)
        delivery = Delivery(
            delivery_id=logged.delivery_id,
            received_at=logged.received_at or self._now(),
            source=logged.source,
        )
        context = _Context(logged, event.name, meeting_id, state, seen, delivery, ports)
        return self._handle(event, context)

    def _handle_synthetic(
        self, logged: Synthetic, state: MeetingState | None
    ) -> Processed | Handled | Waiting:
        event = logged.event
        delivery = Delivery(logged.delivery_id, logged.received_at or self._now(), logged.source)
        ports = self._ports_of(logged, state)
        state = state or MeetingState(event.meeting_id, app=ports.app)
        context = _Context(logged, event.name, event.meeting_id, state, None, delivery, ports)
        return self._handle(event, context)

    def _handle(self, event: object, context: _Context) -> Processed | Handled | Waiting:
        """Run the event's handler as far as it goes without RTK."""
        handler = handler_for(event)
        assert handler is not None  # every known and synthetic event type has a handler
        try:
            outcome = handler(event, context.state, context.delivery, context.ports)
            if isinstance(outcome, HandlerResult):
                return Handled(context, outcome)
            request = next(outcome)
        except StopIteration as done:
            return Handled(context, done.value)
        except Exception as exc:
            return self._failed(context, exc)
        return Waiting(context, outcome, request)

    async def resume(self, waiting: Waiting) -> Processed:
        """Carry out the RTK requests of a waiting event, then finish it."""
        done = await self.complete(waiting)
        return self._finish(done) if isinstance(done, Handled) else done

    async def complete(self, waiting: Waiting) -> Handled | Processed:
        """Carry out the RTK requests of a waiting event: its handler's result (Processed:
        the handler failed)."""
        context = waiting.context
        try:
            api = context.ports.rtk or _no_client(waiting.request)
            result = await drive(waiting.flow, api, waiting.request)
        except Exception as exc:
            return self._failed(context, exc)
        return Handled(context, result)

    async def process(self, logged: Logged, state: MeetingState | None) -> Processed:
        """Process one webhook to its end, RTK requests included."""
        stepped = self.step(logged, state)
        return await self.resume(stepped) if isinstance(stepped, Waiting) else stepped

    def _finish(self, handled: Handled) -> Processed:
        """The messages of a handled event; a failure building them is the handler's."""
        try:
            return self._messages(handled)
        except Exception as exc:
            return self._failed(handled.context, exc)

    def _messages(self, handled: Handled) -> Processed:
        context, result = handled.context, handled.result
        meeting_id, delivery = context.meeting_id, context.delivery
        app = context.ports.app
        messages = [self._message(r, meeting_id, delivery, app) for r in result.records]
        if context.seen is None:  # (a reconciliation finding: no delivery to dead-letter)
            if result.dead_letter is not None:
                log.warning("reconciliation failed", extra={"error": result.dead_letter.reason})
            return Processed(meeting_id, handled.state, tuple(messages))
        if result.dead_letter is not None:
            messages.append(self._dead_letter_copy(context.logged, result.dead_letter))
        name = context.event_name
        self._metrics.inc(
            self._metrics.events,
            name if name in RTK_EVENTS else "other",
            "dead_letter" if result.dead_letter else "ok",
        )
        return Processed(meeting_id, handled.state, tuple(messages))

    def _failed(self, context: _Context, exc: Exception) -> Processed:
        """A handler that raised: a bug, so the event is dead-lettered rather than retried."""
        log.error(
            "handler failed",
            exc_info=exc,
            extra={"event": context.event_name, "meeting_id": context.meeting_id},
        )
        if context.seen is None:
            return Processed(context.meeting_id, None)
        why = DeadLetter(f"handler error: {type(exc).__name__}", "handler")
        copy = self._dead_letter_copy(context.logged, why)
        return Processed(context.meeting_id, context.state.mark_seen(context.seen), (copy,))

    def _parse(self, logged: Logged) -> tuple[KnownEvent, str] | Processed:
        """The event and its meeting, or what to do instead (dead-letter, or nothing)."""
        payload: object = None
        try:
            payload = json.loads(logged.body)
            if not isinstance(payload, dict):
                return self.dead_letter(
                    logged, None, DeadLetter("the body is not a JSON object", "parse")
                )
            event = parse_event(payload)
        except (ValueError, RecursionError) as exc:
            why = DeadLetter(f"not JSON: {type(exc).__name__}", "parse")
            return self.dead_letter(logged, None, why)
        except InvalidEvent as exc:
            key = _meeting_of(logged, payload) if isinstance(payload, dict) else None
            return self.dead_letter(logged, key, DeadLetter(str(exc), exc.stage))
        if isinstance(event, UnknownEvent):
            self._metrics.events.labels(event="other", result="unknown").inc()
            return Processed(None, None)
        meeting_id = _meeting_of(logged, payload)
        if meeting_id is None:  # parse_event guarantees a meeting id for known events
            return self.dead_letter(logged, None, DeadLetter("no meeting id", "parse"))
        return event, meeting_id

    def _message(
        self, record: Record, meeting_id: str, delivery: Delivery, app: str | None
    ) -> Outgoing:
        topic = self._topic_of.get(record.type, self._topics.meetings)
        if app is not None:
            record = record.model_copy(update={"app": app})
        headers = cloudevent_headers(
            record,
            ce_id=cloudevent_id(delivery.delivery_id, record),
            source=f"rtk-router/{delivery.source}",
            time=delivery.received_at,
        )
        if app is not None:
            headers.append((envelope.APP, app.encode()))
        return Outgoing(topic, meeting_id.encode(), record.to_bytes(), headers)

    def dead_letter(self, logged: Logged, meeting_id: str | None, why: DeadLetter) -> Processed:
        """Nothing but the webhook's dead-letter copy (the meeting's state unchanged); nothing
        at all for a synthetic event, which has no body."""
        if isinstance(logged, Synthetic):
            log.warning("reconciliation failed", extra={"error": why.reason})
            return Processed(meeting_id, None)
        return Processed(meeting_id, None, (self._dead_letter_copy(logged, why),))

    def _dead_letter_copy(self, logged: Logged, why: DeadLetter) -> Outgoing:
        """The raw webhook for the dead-letter topic, with why and at which stage, and never
        its signature (a signed copy could be posted back and accepted again); secrets RTK
        sent in it (a stream key) are masked, and `router-redacted` names them."""
        self._metrics.dead_letters.labels(stage=why.stage).inc()
        log.warning("dead-lettered", extra={"stage": why.stage, "error": why.reason})
        headers = [
            *logged.copy_headers(),
            (envelope.ERROR, why.reason.encode()),
            (envelope.STAGE, why.stage.encode()),
        ]
        value = logged.message.value
        if value is not None:
            value, masked = redact_body(value)
            if masked:
                headers.append((envelope.REDACTED, ",".join(masked).encode()))
        return Outgoing(self._topics.dead_letter, logged.message.key, value, headers)


def _no_client(request: Request) -> RecordingApi:
    """Handlers ask nothing of RTK without a client configured: this is a bug."""
    msg = f"{request!r} asked of no RTK client"
    raise RuntimeError(msg)


def _meeting_of(logged: Logged, payload: dict[str, object]) -> str | None:
    return logged.meeting_id or meeting_key(payload)
