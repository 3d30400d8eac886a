"""Meetings as the emulator knows them: the participants added to each (with presets, for the
participants API) and the live session with its peers, driven by scripts.

Peers follow RTK's rules: each join is a peer, so one participant on two devices is two peers;
`meeting.started` goes out before the first join of a session, and the last leave ends the
session with `meeting.ended` (reason `ALL_PARTICIPANTS_LEFT`) unless the script says otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from router import clock
from router.clock import rfc3339
from router.emulator.config import MeetingScript, ParticipantSeed, ScriptStep
from router.emulator.webhooks import WebhookSender
from router.samples import sample_payload


@dataclass
class Peer:
    peer_id: str
    custom_participant_id: str
    display_name: str
    joined_at: dt.datetime


@dataclass
class Meeting:
    id: str
    title: str
    created_at: dt.datetime
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_id: str | None = None
    started_at: dt.datetime | None = None
    peers: dict[str, Peer] = field(default_factory=dict)
    most_peers: int = 0  # of the live session, at once

    def active_session(self, organization_id: str) -> dict[str, Any] | None:
        """The live session as RTK's active-session API shows it, or None when there is none."""
        if self.session_id is None:
            return None
        started = rfc3339(self.started_at or self.created_at)
        return {
            "id": self.session_id,
            "associated_id": self.id,
            "live_participants": len(self.peers),
            "max_concurrent_participants": self.most_peers,
            "status": "LIVE",
            "started_at": started,
            "meeting_display_name": self.title,
            "organization_id": organization_id,
            "type": "meeting",
            "created_at": started,
            "updated_at": rfc3339(clock.now()),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "session_id": self.session_id,
            "peers": [
                {"peer_id": p.peer_id, "custom_participant_id": p.custom_participant_id}
                for p in self.peers.values()
            ],
            "participants": list(self.participants.values()),
        }


class MeetingBook:
    """Every meeting the emulator has heard of; a meeting comes into being when first named."""

    def __init__(self, *, sender: WebhookSender, organization: dict[str, str]) -> None:
        self._sender = sender
        self._organization = organization
        self.meetings: dict[str, Meeting] = {}
        # Told whether anyone is present after a join, a last leave or an end.
        self.on_presence: Callable[[str, bool], None] = lambda meeting_id, anyone: None

    def get(self, meeting_id: str, *, title: str | None = None) -> Meeting:
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            meeting = Meeting(meeting_id, title or "Emulated meeting", clock.now())
            self.meetings[meeting_id] = meeting
        elif title:
            meeting.title = title
        return meeting

    def add_participants(self, meeting_id: str, seeds: Iterable[ParticipantSeed]) -> None:
        """Add participants (or change their preset or name), as RTK's Add Participant would."""
        meeting = self.get(meeting_id)
        now = rfc3339(clock.now())
        for seed in seeds:
            row = meeting.participants.get(seed.custom_participant_id)
            if row is None:
                row = {"id": str(uuid.uuid4()), "picture": None, "created_at": now}
                meeting.participants[seed.custom_participant_id] = row
            row.update(
                custom_participant_id=seed.custom_participant_id,
                preset_name=seed.preset_name,
                name=seed.name,
                updated_at=now,
            )

    def active_session(self, meeting_id: str) -> dict[str, Any] | None:
        """The meeting's live session as the active-session API shows it, or None."""
        meeting = self.meetings.get(meeting_id)
        return meeting.active_session(self._organization["id"]) if meeting else None

    def page(
        self, meeting_id: str, page_no: int, per_page: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of a meeting's participants (pages from 1) and the total count."""
        meeting = self.meetings.get(meeting_id)
        rows = list(meeting.participants.values()) if meeting else []
        start = (page_no - 1) * per_page
        return rows[start : start + per_page], len(rows)

    def meeting_fields(self, meeting: Meeting, session_id: str | None) -> dict[str, Any]:
        """What the emulator knows of a meeting, merged over a sample `meeting` object."""
        fields: dict[str, Any] = {
            "id": meeting.id,
            "title": meeting.title,
            "roomName": meeting.id,
            "createdAt": rfc3339(meeting.created_at),
            "organizedBy": dict(self._organization),
        }
        if session_id is not None:
            fields["sessionId"] = session_id
        # A meeting recorded without a scripted session counts as live since it was first named.
        fields["startedAt"] = rfc3339(meeting.started_at or meeting.created_at)
        return fields

    def join(self, meeting_id: str, step: ScriptStep) -> Peer:
        meeting = self.get(meeting_id)
        custom_id = step.participant or ""
        if step.preset:
            self.add_participants(
                meeting_id,
                [
                    ParticipantSeed(
                        custom_participant_id=custom_id, preset_name=step.preset, name=step.name
                    )
                ],
            )
        now = clock.now()
        if meeting.session_id is None:
            meeting.session_id = str(uuid.uuid4())
            meeting.started_at = now
            self._send(meeting, "meeting.started", now)
        peer = Peer(step.peer_id or str(uuid.uuid4()), custom_id, step.name or custom_id, now)
        meeting.peers[peer.peer_id] = peer
        meeting.most_peers = max(meeting.most_peers, len(meeting.peers))
        self._send(meeting, "meeting.participantJoined", now, peer=peer)
        self.on_presence(meeting_id, True)
        return peer

    def leave(self, meeting_id: str, step: ScriptStep, *, end_when_empty: bool = True) -> None:
        meeting = self.get(meeting_id)
        peer = meeting.peers.get(step.peer_id or "")
        if peer is None:  # the participant's most recent peer
            mine = [
                p for p in meeting.peers.values() if p.custom_participant_id == step.participant
            ]
            peer = mine[-1] if mine else None
        if peer is None:
            return
        del meeting.peers[peer.peer_id]
        self._send(meeting, "meeting.participantLeft", clock.now(), peer=peer)
        if not meeting.peers:
            self.on_presence(meeting_id, False)
            if end_when_empty:
                self.end(meeting_id, "ALL_PARTICIPANTS_LEFT")

    def end(self, meeting_id: str, reason: str) -> None:
        meeting = self.get(meeting_id)
        if meeting.session_id is None:
            return
        for peer in list(meeting.peers.values()):
            del meeting.peers[peer.peer_id]
            self._send(meeting, "meeting.participantLeft", clock.now(), peer=peer)
        self._send(meeting, "meeting.ended", clock.now(), reason=reason)
        self.on_presence(meeting_id, False)
        meeting.session_id = None
        meeting.started_at = None
        meeting.most_peers = 0

    async def play(self, script: MeetingScript) -> None:
        """Play a script in real time: each step `at` seconds after the start."""
        self.get(script.meeting_id, title=script.title)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for step in sorted(script.steps, key=lambda s: s.at):
            delay = begin + step.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if step.action == "join":
                self.join(script.meeting_id, step)
            elif step.action == "leave":
                self.leave(script.meeting_id, step, end_when_empty=script.end_when_empty)
            else:
                self.end(script.meeting_id, step.reason)

    def _send(
        self,
        meeting: Meeting,
        event: str,
        now: dt.datetime,
        *,
        peer: Peer | None = None,
        reason: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {"meeting": self.meeting_fields(meeting, meeting.session_id)}
        if reason is not None:
            extra["reason"] = reason
        if peer is not None:
            times = {"joinedAt": rfc3339(peer.joined_at)}
            if event == "meeting.participantLeft":
                times["leftAt"] = rfc3339(now)
            extra["participant"] = times
        payload = sample_payload(
            event,
            now=now,
            meeting_id=meeting.id,
            session_id=meeting.session_id,
            peer_id=peer.peer_id if peer else None,
            custom_participant_id=peer.custom_participant_id if peer else None,
            display_name=peer.display_name if peer else None,
            **extra,
        )
        self._sender.send(meeting.id, payload)
