"""What the worker remembers of one meeting between events: its session, the peers present, the
recordings it knows, and the deliveries already processed; with pure transitions and a JSON form.

The state lives on a compacted Kafka topic keyed by meeting id and is restored on restart or
rebalance, so it is a value: every transition returns a new `MeetingState` and nothing here
performs I/O. Handlers call `enter_session` with the meeting as each event describes it, then
the transition for the event.

Sessions. A meeting is a persistent room; each time it goes live RTK gives it a new session id.
A session id not seen before starts a new session: its peers and its recording start from
nothing. RTK promises no ordering, so a late event of an earlier (or ended) session must not
wipe the current one: ids of past sessions are remembered, and their events change no peers.

Peers are a set keyed by `peerId`, so a join delivered twice counts once; one person on two
devices is two peers but one distinct participant (by custom participant id).

Deliveries. Every delivery processed for the meeting is remembered by a 16-byte digest (the
first 128 bits of its body's SHA-256), so that a retry or a replay is recognised however late
it comes in the session: all of the current session's digests are kept, and those of the
session before it too, since a session's last events (its `meeting.ended`, its recording's
`UPLOADED`) and their retries may still come once the next one has started. The session
before that one is forgotten when a new session starts; a retry of its events would be
recorded again, but no policy acts on an event of a past session. The memory is bounded in
bytes, `MAX_SEEN_BYTES` a meeting (4,096 deliveries), because it is held in memory for every
meeting and written to the state topic with each of its events: past the bound the oldest
digests go first (the previous session's, then the current one's), and `seen_dropped` counts
them. The digests are one `bytes`, side by side, oldest first (base64 in the JSON, 21.3
characters a delivery), searched for a look-up; a Python set of them would cost some 80
bytes more a delivery in memory, and a copy of it for every transition.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

from router.core.entities import usable
from router.core.recording_state import ACTIVE, Verdict, judge

MAX_RECORDINGS = 32
# Remembered deliveries: digests of this many bytes, at most MAX_SEEN_BYTES of them a meeting.
SEEN_DIGEST_BYTES = 16
MAX_SEEN_BYTES = 64 * 1024
MAX_PAST_SESSIONS = 16
# Peers RTK counts but whose joins never reached the router (see `adopt_count`).
PLACEHOLDER_PREFIX = "reconciled:"
# Bumped only for a change old code cannot read; new optional fields do not need it.
STATE_VERSION = 1


@dataclass(frozen=True)
class KnownRecording:
    """The recording the router knows to be active (INVOKED, RECORDING or PAUSED)."""

    id: str
    status: str
    session_id: str | None
    started_by_router: bool = False


class RecordingChange(NamedTuple):
    """The outcome of a recording status: the new state, whether to publish, and the status
    published before it (the record's `previous_status`)."""

    state: MeetingState
    verdict: Verdict
    previous_status: str | None


def _frozen(mapping: Mapping[str, str | None] | None = None) -> Mapping[str, str | None]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class MeetingState:
    """One meeting as the worker knows it. Build a fresh one with `MeetingState(meeting_id)`."""

    meeting_id: str
    session_id: str | None = None
    title: str | None = None
    organization_id: str | None = None
    # peer id -> custom participant id (None when RTK sent none)
    peers: Mapping[str, str | None] = field(default_factory=_frozen)
    active_recording: KnownRecording | None = None
    # The recording of the current session, kept after it ends: at most one per session.
    session_recording_id: str | None = None
    # recording id -> last published status, oldest first
    recordings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Digests of the deliveries processed, SEEN_DIGEST_BYTES each, oldest first: the first
    # `seen_previous` of them are of the session before this one, the rest of this session.
    seen: bytes = b""
    seen_previous: int = 0
    # Digests forgotten to stay within MAX_SEEN_BYTES, over the meeting's life.
    seen_dropped: int = 0
    past_sessions: tuple[str, ...] = ()
    # The RTK app the meeting belongs to (None: the single-app form), for reconciliation.
    app: str | None = None

    def __post_init__(self) -> None:
        # Callers may hand in plain dicts; keep the value immutable all the same. A proxy
        # (what every transition passes on unchanged) is already a read-only copy made here.
        if type(self.peers) is not MappingProxyType:
            object.__setattr__(self, "peers", _frozen(self.peers))
        if type(self.recordings) is not MappingProxyType:
            object.__setattr__(self, "recordings", MappingProxyType(dict(self.recordings)))
        if type(self.seen) is not bytes:
            object.__setattr__(self, "seen", bytes(self.seen))
        if type(self.past_sessions) is not tuple:
            object.__setattr__(self, "past_sessions", tuple(self.past_sessions))

    def _evolve(self, **changes: Any) -> MeetingState:
        """`dataclasses.replace` for this class: every event makes a few new states, and the
        generic version walks the fields' definitions each time (a quarter of an event's
        cost). The fields are copied as they are, then normalised as a new value is."""
        state = object.__new__(MeetingState)
        fields = state.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        state.__post_init__()
        return state

    @property
    def participants_present(self) -> int:
        """Peers present in the current session."""
        return len(self.peers)

    @property
    def distinct_participants(self) -> int:
        """Distinct custom participant ids among the peers present (peers without one are not
        counted: they cannot be told apart from each other)."""
        return len({custom for custom in self.peers.values() if custom is not None})

    @property
    def active_status(self) -> str | None:
        """Status of the recording the router knows to be active, or None."""
        return self.active_recording.status if self.active_recording else None

    @property
    def is_over(self) -> bool:
        """True when the session has ended and no recording is active: nothing is left to
        decide for it, and only late events may still come."""
        return (
            self.session_id is not None
            and self.session_id in self.past_sessions
            and not self.peers
            and self.active_recording is None
        )

    def is_past_session(self, session_id: str | None) -> bool:
        """True when `session_id` names a session that has ended or been superseded."""
        return session_id is not None and session_id in self.past_sessions

    @property
    def seen_count(self) -> int:
        """Deliveries remembered (see `mark_seen`)."""
        return len(self.seen) // SEEN_DIGEST_BYTES

    def has_seen(self, key: str) -> bool:
        """True when a delivery with this key was processed in this session or the one before
        (see `mark_seen`)."""
        return _holds(self.seen, _digest(key))

    def enter_session(
        self,
        session_id: str | None,
        *,
        title: str | None = None,
        organization_id: str | None = None,
    ) -> MeetingState:
        """The state once an event describing the meeting this way is known; a new session id
        starts a new session, a past one changes nothing."""
        if self.is_past_session(session_id) and session_id != self.session_id:
            return self
        state = self
        if (title and title != self.title) or (
            organization_id and organization_id != self.organization_id
        ):
            state = self._evolve(
                title=title or self.title,
                organization_id=organization_id or self.organization_id,
            )
        if session_id is None or session_id == self.session_id:
            return state
        if self.session_id is None:
            # The first session we hear of: whatever we knew already belongs to it.
            return state._evolve(session_id=session_id)
        active = self.active_recording
        # The session ending now becomes the previous one; the one before it is forgotten.
        seen = self.seen[self.seen_previous * SEEN_DIGEST_BYTES :]
        return state._evolve(
            session_id=session_id,
            peers={},
            session_recording_id=None,
            active_recording=active if active and active.session_id == session_id else None,
            past_sessions=_remember(self.past_sessions, self.session_id, MAX_PAST_SESSIONS),
            seen=seen,
            seen_previous=len(seen) // SEEN_DIGEST_BYTES,
        )

    def started(self, session_id: str | None = None) -> MeetingState:
        """After `meeting.started`: the count stays as it is for the same session (joins may
        arrive first), and a new session starts at 0 (by `enter_session`)."""
        return self.enter_session(session_id)

    def ended(self, session_id: str | None = None) -> MeetingState:
        """After `meeting.ended`: nobody is present, and the session is over, so its late joins
        and leaves change nothing."""
        if self.is_past_session(session_id) and session_id != self.session_id:
            return self
        state = self.enter_session(session_id)
        ended = state.session_id
        past = state.past_sessions
        if ended is not None:
            past = _remember(past, ended, MAX_PAST_SESSIONS)
        return state._evolve(peers={}, past_sessions=past)

    def joined(
        self,
        peer_id: str,
        custom_participant_id: str | None = None,
        *,
        session_id: str | None = None,
    ) -> MeetingState:
        """A peer joined; joining twice counts once, and a join of a past session is ignored.
        A new peer takes the place of a reconciliation placeholder, if any (see
        `adopt_count`): its join is most likely the late one RTK had already counted."""
        if self.is_past_session(session_id or self.session_id):
            return self
        if peer_id in self.peers and custom_participant_id is None:
            custom_participant_id = self.peers[peer_id]
        peers = self.peers
        if peer_id not in peers and (
            placeholder := next((p for p in peers if p.startswith(PLACEHOLDER_PREFIX)), None)
        ):
            peers = {p: c for p, c in peers.items() if p != placeholder}
        return self._evolve(peers={**peers, peer_id: custom_participant_id})

    def left(self, peer_id: str, *, session_id: str | None = None) -> MeetingState:
        """A peer left; leaving twice, or leaving a past session, changes nothing."""
        if peer_id not in self.peers or self.is_past_session(session_id or self.session_id):
            return self
        return self._evolve(peers={p: c for p, c in self.peers.items() if p != peer_id})

    def adopt_count(self, count: int) -> MeetingState:
        """RTK counts `count` peers in the live session (reconciliation): peers whose joins
        were lost are added as placeholders (`reconciled:N`, no custom id), and when RTK counts
        fewer, placeholders go first, then the peers that joined earliest. A join that comes
        after all takes a placeholder's place (`joined`): counting one too few only delays a
        decision to the next round, counting one too many could make one wrongly."""
        peers = dict(self.peers)
        placeholders = [p for p in peers if p.startswith(PLACEHOLDER_PREFIX)]
        known = [p for p in peers if not p.startswith(PLACEHOLDER_PREFIX)]
        for peer_id in (placeholders + known)[: max(len(peers) - count, 0)]:
            del peers[peer_id]
        number = 0
        while len(peers) < count:
            number += 1
            peer_id = f"{PLACEHOLDER_PREFIX}{number}"
            if peer_id not in peers:
                peers[peer_id] = None
        return self._evolve(peers=peers)

    def recording_status(
        self, recording_id: str, status: str, session_id: str | None = None
    ) -> RecordingChange:
        """Judge a recording's new status and, if it is published, remember it and keep the
        active recording in step."""
        previous = self.recordings.get(recording_id)
        verdict = judge(previous, status)
        if not verdict.publish:
            return RecordingChange(self, verdict, previous)
        recordings = {rid: st for rid, st in self.recordings.items() if rid != recording_id}
        recordings[recording_id] = status
        while len(recordings) > MAX_RECORDINGS:
            del recordings[next(iter(recordings))]
        active = self.active_recording
        session_recording_id = self.session_recording_id
        if status in ACTIVE:
            session = session_id or self.session_id
            if not self.is_past_session(session) or session == self.session_id:
                by_router = bool(active and active.id == recording_id and active.started_by_router)
                active = KnownRecording(recording_id, status, session, by_router)
                if session == self.session_id and session_recording_id is None:
                    session_recording_id = recording_id
            elif active is not None and active.id == recording_id:
                # The recording we know, reported under a past session: its status still moves.
                active = replace(active, status=status)
        elif active is not None and active.id == recording_id:
            active = None
        state = self._evolve(
            recordings=recordings,
            active_recording=active,
            session_recording_id=session_recording_id,
        )
        return RecordingChange(state, verdict, previous)

    def recording_started_by_router(
        self, recording_id: str, status: str, session_id: str | None = None
    ) -> RecordingChange:
        """The router started this recording (the API answered with `status`): it is the
        session's recording, and the `INVOKED` it publishes has `source: "api"`."""
        change = self.recording_status(recording_id, status, session_id)
        state = change.state
        active = state.active_recording
        if active is not None and active.id == recording_id:
            state = state._evolve(active_recording=replace(active, started_by_router=True))
        if (session_id or state.session_id) == state.session_id:
            state = state._evolve(session_recording_id=recording_id)
        return change._replace(state=state)

    def of_app(self, app: str | None) -> MeetingState:
        """The meeting as belonging to `app`."""
        return self if app == self.app else self._evolve(app=app)

    def mark_seen(self, key: str) -> MeetingState:
        """Remember a processed delivery by its key: `"b:"` and the hex of its body's SHA-256
        (32 digits or more; the first 32 are kept), or any other string (kept as a digest of
        it). Past `MAX_SEEN_BYTES` the oldest are forgotten, counted in `seen_dropped`."""
        digest = _digest(key)
        if _holds(self.seen, digest):
            return self
        over = len(self.seen) + SEEN_DIGEST_BYTES - MAX_SEEN_BYTES
        if over <= 0:
            return self._evolve(seen=self.seen + digest)
        dropped = -(-over // SEEN_DIGEST_BYTES)
        return self._evolve(
            seen=b"".join((memoryview(self.seen)[dropped * SEEN_DIGEST_BYTES :], digest)),
            seen_previous=max(self.seen_previous - dropped, 0),
            seen_dropped=self.seen_dropped + dropped,
        )

    def to_json(self) -> bytes:
        """The compact JSON the state topic holds."""
        doc = {
            "version": STATE_VERSION,
            "meeting_id": self.meeting_id,
            "session_id": self.session_id,
            "title": self.title,
            "organization_id": self.organization_id,
            "peers": dict(self.peers),
            "active_recording": asdict(self.active_recording) if self.active_recording else None,
            "session_recording_id": self.session_recording_id,
            "recordings": dict(self.recordings),
            "past_sessions": list(self.past_sessions),
            "seen_previous": self.seen_previous,
            "seen_dropped": self.seen_dropped,
        }
        if self.app is not None:  # (the single-app form's states stay as they were)
            doc["app"] = self.app
        head = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        # The digests, base64, go in last and as they are: base64 needs no JSON escaping, and
        # this spares a scan of up to 87 KiB of text for every state written.
        seen = binascii.b2a_base64(self.seen, newline=False)
        return b"".join((head[:-1], b',"seen":"', seen, b'"}'))

    @classmethod
    def from_json(cls, data: bytes | str) -> MeetingState:
        """Restore from `to_json` output of this or another version, taking every field that is
        usable and defaulting the rest; `ValueError` when it is not a meeting state at all."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"meeting state is not JSON: {type(exc).__name__}") from None
        if not isinstance(doc, dict) or not usable(doc.get("meeting_id")):
            raise ValueError("meeting state is not an object with a string meeting_id")
        peers = _object(doc.get("peers"))
        recordings = _object(doc.get("recordings"))
        seen, previous = _seen(doc.get("seen"), _count(doc.get("seen_previous")))
        return cls(
            meeting_id=doc["meeting_id"],
            session_id=_text_or_none(doc.get("session_id")),
            title=_text_or_none(doc.get("title")),
            organization_id=_text_or_none(doc.get("organization_id")),
            peers={peer: _text_or_none(custom) for peer, custom in peers.items()},
            active_recording=_known_recording(doc.get("active_recording")),
            session_recording_id=_text_or_none(doc.get("session_recording_id")),
            recordings=dict(
                [(r, st) for r, st in recordings.items() if usable(st)][-MAX_RECORDINGS:]
            ),
            past_sessions=_texts(doc.get("past_sessions"))[-MAX_PAST_SESSIONS:],
            seen=seen,
            seen_previous=previous,
            seen_dropped=_count(doc.get("seen_dropped")),
            app=_text_or_none(doc.get("app")),
        )


def _digest(key: str) -> bytes:
    """The digest a delivery key is remembered by: the body's own for a `"b:"` key (its first
    128 bits), a SHA-256 of the key for any other."""
    if key.startswith("b:") and len(key) >= 2 + 2 * SEEN_DIGEST_BYTES:
        try:
            raw = bytes.fromhex(key[2 : 2 + 2 * SEEN_DIGEST_BYTES])
        except ValueError:
            raw = b""
        if len(raw) == SEEN_DIGEST_BYTES:  # (fromhex skips white space)
            return raw
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:SEEN_DIGEST_BYTES]


def _holds(seen: bytes, digest: bytes) -> bool:
    """True when `digest` is one of the digests side by side in `seen` (a match that straddles
    two of them is no match)."""
    at = seen.find(digest)
    while at > 0 and at % SEEN_DIGEST_BYTES:
        at = seen.find(digest, at + 1)
    return at >= 0


def _seen(value: object, previous: int) -> tuple[bytes, int]:
    """The remembered digests and how many are of the previous session, from the JSON: base64
    of the digests, or the list of keys written before (all taken as of the current session);
    within MAX_SEEN_BYTES, the oldest dropped first."""
    if isinstance(value, str):
        try:
            seen = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):  # (ValueError: not ASCII)
            seen = b""
        seen = seen[: len(seen) - len(seen) % SEEN_DIGEST_BYTES]
    else:
        seen, previous = b"".join(dict.fromkeys(_digest(key) for key in _texts(value))), 0
    over = max(len(seen) - MAX_SEEN_BYTES, 0) // SEEN_DIGEST_BYTES
    seen = seen[over * SEEN_DIGEST_BYTES :]
    return seen, min(max(previous - over, 0), len(seen) // SEEN_DIGEST_BYTES)


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0


def _remember(past: Iterable[str], session_id: str, limit: int) -> tuple[str, ...]:
    kept = tuple(s for s in past if s != session_id)
    return (*kept, session_id)[-limit:]


def _text_or_none(value: object) -> str | None:
    return value if usable(value) else None


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _texts(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if usable(item)) if isinstance(value, list) else ()


def _known_recording(value: object) -> KnownRecording | None:
    if not isinstance(value, dict) or not usable(value.get("id")):
        return None
    if not usable(status := value.get("status")):
        return None
    return KnownRecording(
        id=value["id"],
        status=status,
        session_id=_text_or_none(value.get("session_id")),
        started_by_router=value.get("started_by_router") is True,
    )
