"""Builders of the published records from a parsed event, the meeting's state after the event,
and the facts of the delivery: the one place where RTK's vocabulary becomes the topics'.

A builder is handed the state *after* the event was applied (so `participants_present` counts a
joining peer and not a leaving one) and never reads the clock: `received_at` and `decided_at`
come from the caller. Meeting fields the event lacks (`meeting.summary` sends no title) are
taken from the state, which remembers them from earlier events of the meeting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from router.core.events import (
    ChatSynced,
    LivestreamStatusUpdate,
    MeetingEnded,
    MeetingStarted,
    MeetingSummary,
    MeetingTranscript,
    ParticipantJoined,
    ParticipantLeft,
    RecordingInfo,
    occurred_at,
    recording_occurred_at,
)
from router.core.meeting_state import MeetingState
from router.core.policy import RuleJudgement
from router.core.records import (
    ChatReadyRecord,
    DecisionParticipant,
    LivestreamStatusChangedRecord,
    MeetingEndedRecord,
    MeetingReconciledRecord,
    MeetingRecord,
    MeetingStartedRecord,
    ParticipantJoinedRecord,
    ParticipantLeftRecord,
    PolicyDecision,
    RecordingStatusChanged,
    RecordParticipant,
    RuleExplanation,
    SummaryReadyRecord,
    TranscriptReadyRecord,
)
from router.core.terms import Action, Mode, Outcome

# The events that become a record of the `meetings` topic.
MeetingEvent = (
    MeetingStarted
    | MeetingEnded
    | ParticipantJoined
    | ParticipantLeft
    | ChatSynced
    | MeetingTranscript
    | MeetingSummary
    | LivestreamStatusUpdate
)


def recording_changed(
    recording: RecordingInfo,
    state: MeetingState,
    *,
    previous_status: str | None,
    received_at: dt.datetime,
    delivery_id: str | None,
    source: Literal["webhook", "api", "poll"] = "webhook",
) -> RecordingStatusChanged:
    """The `recording.status_changed` record of a status that `judge` let through.

    For a recording the router started (`source="api"`) with no session id in the API's answer,
    the session is the meeting's current one: that is where the router started it.
    """
    session_id = recording.session_id
    if session_id is None and source == "api":
        session_id = state.session_id
    return RecordingStatusChanged.model_validate(
        {
            "recording_id": recording.id,
            "meeting_id": state.meeting_id,
            "session_id": session_id,
            "status": recording.status,
            "previous_status": previous_status,
            "source": source,
            "occurred_at": recording_occurred_at(recording),
            "received_at": received_at,
            "started_at": recording.started_at,
            "stopped_at": recording.stopped_at,
            "output_file_name": recording.output_file_name,
            "download_url": recording.download_url,
            "audio_download_url": recording.audio_download_url,
            "download_url_expiry": recording.download_url_expiry,
            "file_size": recording.file_size,
            "duration_seconds": recording.duration_seconds,
            "delivery_id": delivery_id,
        }
    )


def meeting_record(
    event: MeetingEvent, state: MeetingState, *, received_at: dt.datetime
) -> MeetingRecord:
    """The record of the `meetings` topic for an event, given the state after it."""
    meeting = event.meeting
    fields: dict[str, object] = {
        "meeting_id": state.meeting_id,
        "session_id": meeting.session_id or state.session_id,
        "title": meeting.title or state.title,
        "organization_id": meeting.organization_id or state.organization_id,
        "occurred_at": occurred_at(event),
        "received_at": received_at,
        "participant": None,
        "participants_present": state.participants_present,
        "reason": None,
    }
    fields |= _specific_fields(event)
    return _RECORD_OF[type(event)].model_validate(fields)


RECONCILED = "reconciled"
_RECONCILED_RECORDS: dict[str, type[MeetingRecord]] = {
    "meeting.started": MeetingStartedRecord,
    "meeting.ended": MeetingEndedRecord,
    "meeting.reconciled": MeetingReconciledRecord,
}


def reconciled_record(
    record_type: Literal["meeting.started", "meeting.ended", "meeting.reconciled"],
    state: MeetingState,
    *,
    received_at: dt.datetime,
    occurred_at: dt.datetime | None = None,
) -> MeetingRecord:
    """A meetings-topic record of what reconciliation found, given the state after it: no
    participant, reason `reconciled`; an ended session has nobody in it."""
    return _RECONCILED_RECORDS[record_type].model_validate(
        {
            "meeting_id": state.meeting_id,
            "session_id": state.session_id,
            "title": state.title,
            "organization_id": state.organization_id,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "participant": None,
            "participants_present": 0
            if record_type == "meeting.ended"
            else state.participants_present,
            "reason": RECONCILED,
        }
    )


_RECORD_OF: dict[type[MeetingEvent], type[MeetingRecord]] = {
    MeetingStarted: MeetingStartedRecord,
    MeetingEnded: MeetingEndedRecord,
    ParticipantJoined: ParticipantJoinedRecord,
    ParticipantLeft: ParticipantLeftRecord,
    ChatSynced: ChatReadyRecord,
    MeetingTranscript: TranscriptReadyRecord,
    MeetingSummary: SummaryReadyRecord,
    LivestreamStatusUpdate: LivestreamStatusChangedRecord,
}


def _specific_fields(event: MeetingEvent) -> dict[str, object]:
    match event:
        case MeetingEnded():
            # Whatever the state holds (a late end of an earlier session leaves the current
            # one alone), an ended session has nobody in it.
            return {"participants_present": 0, "reason": event.reason}
        case ParticipantJoined() | ParticipantLeft():
            person = event.participant
            participant = RecordParticipant(
                peer_id=person.peer_id,
                custom_participant_id=person.custom_participant_id,
                display_name=person.display_name,
            )
            return {"participant": participant}
        case ChatSynced() | MeetingTranscript() | MeetingSummary():
            return {
                "download_url": event.download_url,
                "download_url_expiry": event.download_url_expiry,
            }
        case LivestreamStatusUpdate():
            return {
                "stream_id": event.stream_id,
                "status": event.status,
                "playback_url": event.playback_url,
            }
        case _:
            return {}


def policy_decision(
    *,
    meeting_id: str,
    session_id: str | None,
    trigger: str,
    delivery_id: str | None,
    rule: str | None,
    action: Action,
    outcome: Outcome,
    mode: Mode,
    policy_version: str,
    decided_at: dt.datetime,
    peer_id: str | None = None,
    custom_participant_id: str | None = None,
    display_name: str | None = None,
    preset: str | None = None,
    recording_id: str | None = None,
    error: str | None = None,
    explanation: Sequence[RuleJudgement] = (),
) -> PolicyDecision:
    """The `policy.decision` record; `participant` is null when there is no `peer_id` (for
    example a decision on `meeting.started`); `explanation` as `policy.explanation` gives it."""
    participant = None
    if peer_id is not None:
        participant = DecisionParticipant(
            peer_id=peer_id,
            custom_participant_id=custom_participant_id,
            display_name=display_name,
            preset=preset,
        )
    return PolicyDecision(
        meeting_id=meeting_id,
        session_id=session_id,
        trigger=trigger,
        delivery_id=delivery_id,
        participant=participant,
        rule=rule,
        action=action,
        outcome=outcome,
        recording_id=recording_id,
        mode=mode,
        policy_version=policy_version,
        error=error,
        decided_at=decided_at,
        explanation=tuple(
            RuleExplanation(rule=j.rule, matched=j.matched, why=j.why) for j in explanation
        ),
    )
