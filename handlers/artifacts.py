"""What RTK delivers after or beside a meeting: chat, transcript and summary ready, and
livestream status. Each becomes a meetings-topic record; secrets such as `streamKey` were
already dropped when the event was parsed."""

from __future__ import annotations

from handlers.base import Delivery, HandlerResult, Ports
from router.core.events import ChatSynced, LivestreamStatusUpdate, MeetingSummary, MeetingTranscript
from router.core.meeting_state import MeetingState
from router.core.record_builders import meeting_record


def handle_artifact(
    event: ChatSynced | MeetingTranscript | MeetingSummary | LivestreamStatusUpdate,
    state: MeetingState,
    delivery: Delivery,
    ports: Ports,
) -> HandlerResult:
    """Remember what the event says of the meeting and publish its record."""
    meeting = event.meeting
    if meeting.title or meeting.organization_id:
        state = state.enter_session(
            state.session_id, title=meeting.title, organization_id=meeting.organization_id
        )
    return HandlerResult(state, (meeting_record(event, state, received_at=delivery.received_at),))
