"""`router explain`: the policy decision for one event file, and why each rule did or did not
match; the same evaluation the worker makes, with the session facts given on the command line."""

from __future__ import annotations

import json

from router.clock import now, rfc3339
from router.core.events import (
    MeetingStarted,
    ParticipantJoined,
    ParticipantLeft,
    UnknownEvent,
    occurred_at,
    parse_event,
)
from router.core.policy import (
    MeetingFacts,
    ParticipantFacts,
    Policy,
    PolicyConfig,
    PolicyInput,
    format_evaluation,
)
from router.errors import InvalidEvent


def explain_event(
    config: PolicyConfig,
    body: bytes,
    *,
    participants: int | None,
    preset: str | None,
    recording: str,
) -> str:
    """The decision text; `participants` defaults to 1 after a join and 0 after a leave."""
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            return "not an event: the file does not hold a JSON object"
        event = parse_event(payload)
    except (ValueError, InvalidEvent) as exc:
        return f"not an event the policy can judge: {exc}"
    if isinstance(event, UnknownEvent):
        return f"event: {payload.get('event')}\ndecision: none: the router does not know this event"
    meeting = event.meeting
    person = None
    if isinstance(event, ParticipantJoined | ParticipantLeft):
        p = event.participant
        person = ParticipantFacts(p.peer_id, p.custom_participant_id, p.display_name, preset)
    default = 1 if isinstance(event, ParticipantJoined | MeetingStarted) else 0
    present = default if participants is None else participants
    # Each peer counts as a distinct person here; the worker knows better from its state.
    distinct = present if person is None or person.custom_participant_id else max(present - 1, 0)
    moment = occurred_at(event) or now()
    policy = Policy.from_config(config)
    evaluation = policy.evaluate(
        PolicyInput(
            trigger=event.name,
            meeting=MeetingFacts(
                meeting.id, meeting.title, meeting.session_id, meeting.organization_id
            ),
            participant=person,
            participants=present,
            distinct_participants=distinct,
            recording=recording,
            event_time=moment,
        )
    )
    header = [
        f"policy: {policy.version} ({config.mode})",
        f"session: {present} present, recording {recording}; judged at {rfc3339(moment)}",
    ]
    return "\n".join([*header, format_evaluation(evaluation)])
