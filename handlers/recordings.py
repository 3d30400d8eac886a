"""`recording.statusUpdate`: advance the recording's state machine and publish each real
change once, in order; duplicates, regressions and late updates are counted, not published."""

from __future__ import annotations

from typing import Literal

from handlers.base import Delivery, HandlerResult, Ports
from router.core.events import RecordingInfo, RecordingStatusUpdate
from router.core.meeting_state import MeetingState, RecordingChange
from router.core.record_builders import recording_changed


def handle_recording(
    event: RecordingStatusUpdate,
    state: MeetingState,
    delivery: Delivery,
    ports: Ports,
) -> HandlerResult:
    """Judge the new status against the last published one."""
    recording = event.recording
    if event.meeting.title or event.meeting.organization_id:
        state = state.enter_session(
            state.session_id,
            title=event.meeting.title,
            organization_id=event.meeting.organization_id,
        )
    change = state.recording_status(recording.id, recording.status, recording.session_id)
    if not change.verdict.publish:
        reason = change.verdict.reason or "unknown"
        ports.metrics.recording_updates_dropped.labels(reason=reason).inc()
        return HandlerResult(change.state)
    return published(recording, change, delivery)


def published(
    recording: RecordingInfo,
    change: RecordingChange,
    delivery: Delivery,
    source: Literal["webhook", "poll"] = "webhook",
) -> HandlerResult:
    """The meeting's new state and the record of a status change the state machine let
    through (from a webhook, or from reconciliation's poll)."""
    record = recording_changed(
        recording,
        change.state,
        previous_status=change.previous_status,
        received_at=delivery.received_at,
        delivery_id=delivery.delivery_id,
        source=source,
    )
    return HandlerResult(change.state, (record,))
