"""The one-line summaries of a meeting's story (`router.core.story`), one function per kind of
record. Records are read leniently: a field missing or of another type is shown as unknown,
never an error, so that records of a newer version still tell their story."""

from __future__ import annotations

from collections.abc import Mapping

_STARTED = "started"


def decision_summary(record: Mapping[str, object]) -> str:
    """Outcome, trigger, rule, policy version and recording; and, unless it started a
    recording, why the rules evaluated did not match."""
    outcome = text_of(record, "outcome")
    parts = [
        f"{outcome} on {text_of(record, 'trigger')}{_who(record)}",
        f"rule {text_of(record, 'rule') or 'none'}",
        f"policy {text_of(record, 'policy_version') or 'unknown'}",
        f"recording {text_of(record, 'recording_id') or 'none'}",
    ]
    if text_of(record, "mode") == "shadow":
        parts.append("shadow mode")
    error = text_of(record, "error")
    if error:
        parts.append(f"error: {error}")
    summary = ", ".join(parts)
    if outcome != _STARTED:
        missed = not_matched(record, default="")
        if missed:
            summary += f"; not matched: {missed}"
    return summary


def not_matched(record: Mapping[str, object], default: str = "no rule matched") -> str:
    """`rule: why` of every rule of a decision's explanation that did not match."""
    explanation = record.get("explanation")
    if not isinstance(explanation, list):
        return default
    reasons = [
        f"{item.get('rule')}: {item.get('why')}"
        for item in explanation
        if isinstance(item, Mapping) and item.get("matched") is False
    ]
    return "; ".join(reasons) or default


def recording_summary(record: Mapping[str, object]) -> str:
    """Recording id, status change, source and, once there is one, the download link."""
    previous = text_of(record, "previous_status")
    change = f"{previous} -> " if previous else ""
    parts = [
        f"{text_of(record, 'recording_id')} {change}{text_of(record, 'status')}",
        f"source {text_of(record, 'source') or 'unknown'}",
    ]
    parts += [
        f"{name.replace('_', ' ')} {record[name]}"
        for name in ("duration_seconds", "file_size", "download_url")
        if record.get(name) is not None
    ]
    return ", ".join(parts)


def meeting_summary(record: Mapping[str, object]) -> str:
    """Session, participant, peers present and reason; and title, status or link if any."""
    parts = [f"session {text_of(record, 'session_id') or 'unknown'}"]
    title = text_of(record, "title")
    if title and record.get("type") == "meeting.started":
        parts.append(f"title {title!r}")
    who = _who(record).removeprefix(" by ")
    if who:
        parts.append(who)
    present = record.get("participants_present")
    if isinstance(present, int):
        parts.append(f"{present} present")
    parts += [
        f"{name.replace('_', ' ')} {record[name]}"
        for name in ("status", "download_url", "playback_url", "reason")
        if record.get(name) is not None
    ]
    return ", ".join(parts)


def dead_letter_summary(record: Mapping[str, object]) -> str:
    """The event, the stage that gave up on it and why."""
    stage = text_of(record, "stage") or "unknown"
    error = text_of(record, "error") or "no reason given"
    delivery = text_of(record, "delivery_id")
    shown = f" (delivery {delivery})" if delivery else ""
    return f"{text_of(record, 'event') or 'event'}{shown} at stage {stage}: {error}"


def _who(record: Mapping[str, object]) -> str:
    participant = record.get("participant")
    if not isinstance(participant, Mapping):
        return ""
    name = participant.get("display_name") or participant.get("custom_participant_id")
    peer = participant.get("peer_id")
    shown = f"{name} (peer {peer})" if name else f"peer {peer}"
    preset = participant.get("preset")
    return f" by {shown}" + (f" as {preset}" if isinstance(preset, str) else "")


def text_of(record: Mapping[str, object], name: str) -> str | None:
    """A string field of a record, or None when it is missing or not a string."""
    value = record.get(name)
    return value if isinstance(value, str) else None
