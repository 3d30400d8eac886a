"""Handlers, one module per RTK event family: given an event, the meeting's state and the
ports, decide and act. `handler_for` maps a parsed event to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.artifacts import handle_artifact
from handlers.base import Delivery, HandlerFlow, HandlerResult, Ports
from handlers.meetings import handle_meeting
from handlers.participants import handle_participant
from handlers.reconcile import handle_polled, handle_session
from handlers.recordings import handle_recording
from router.core import events, reconciliation

# A handler answers at once, or is a flow that may yield RTK requests first.
Handler = Callable[[Any, Any, Delivery, Ports], HandlerResult | HandlerFlow]

_HANDLERS: dict[type[Any], Handler] = {
    events.MeetingStarted: handle_meeting,
    events.MeetingEnded: handle_meeting,
    events.ParticipantJoined: handle_participant,
    events.ParticipantLeft: handle_participant,
    events.RecordingStatusUpdate: handle_recording,
    events.ChatSynced: handle_artifact,
    events.MeetingTranscript: handle_artifact,
    events.MeetingSummary: handle_artifact,
    events.LivestreamStatusUpdate: handle_artifact,
    # Internal: what reconciliation found (never parsed from a webhook).
    reconciliation.SessionChecked: handle_session,
    reconciliation.RecordingPolled: handle_polled,
}


def handler_for(event: object) -> Handler | None:
    """The handler of an event's family, or None for an event type the router does not know."""
    return _HANDLERS.get(type(event))


__all__ = ["Delivery", "Handler", "HandlerFlow", "HandlerResult", "Ports", "handler_for"]
