"""What every handler is given and gives back: the delivery's facts, the ports to the outside,
and a result (the meeting's new state, the records to publish, a reason to dead-letter).

Handlers are plain functions. One that may need RTK is a generator (a `HandlerFlow`): it yields
the RTK requests of its decision and is sent their answers (see `router.core.decision_flow`),
so that the worker decides whether and when to carry them out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from router.core.meeting_state import MeetingState
from router.core.policy import Policy
from router.core.records import Record
from router.core.rtk_requests import Answer, Request
from router.core.terms import DeadLetter, Mode
from router.decision_driver import RecordingApi
from router.metrics import Metrics


@dataclass(frozen=True)
class Delivery:
    """The logged webhook an event came from."""

    delivery_id: str
    received_at: dt.datetime
    source: str


@dataclass(frozen=True)
class Ports:
    """The outside as handlers see it. `rtk` is None when no API token is configured (the RTK
    client in the worker, answers that call nothing in `router backtest`)."""

    policy: Policy
    mode: Mode
    rtk: RecordingApi | None
    metrics: Metrics
    now: Callable[[], dt.datetime]
    app: str | None = None  # the RTK app these ports are of (None: the single-app form)


@dataclass(frozen=True)
class HandlerResult:
    """The meeting after the event, what to publish, and why to dead-letter (None: don't)."""

    state: MeetingState
    records: tuple[Record, ...] = ()
    dead_letter: DeadLetter | None = None
    notes: tuple[str, ...] = field(default=())


HandlerFlow = Generator[Request, Answer, HandlerResult]
