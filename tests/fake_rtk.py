"""An in-memory RTK behind the `RecordingApi` protocol, answering as the RTK client does after
its retries: one active recording per meeting (a second start is a 409), presets per meeting,
and scripted faults (a status for the next N attempts, a Retry-After, a lost answer).

A retriable fault (429, 5xx) is tried again up to `attempts` times, honouring Retry-After in
`waits`, then given up with the error the client raises when its budget is spent; any other
fault fails at once. The reconciliation calls (`active_session`, `get_recording`) make one
attempt, as the client does for them. `tests/test_recording_api_contract.py` holds it to the
emulator.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from router.core.entities import RecordingInfo
from router.errors import RtkApiError
from router.rtk_models import RtkRecording, RtkSession, session_from
from router.rtk_retry import Failure, give_up, is_retriable, outcome_of

_ENDED = ("STOPPED", "UPLOADING", "UPLOADED", "ERRORED")
Answer = Literal["answer", "lost", "absent"]


@dataclass
class Fault:
    status: int | None  # None: the answer is lost (a time-out), after the call took effect
    count: int
    calls: frozenset[str]
    retry_after: float | None = None


@dataclass
class FakeRecording:
    id: str
    meeting_id: str
    status: str
    params: dict[str, Any]


@dataclass
class FakeRtk:
    """RTK as the decision flow sees it; `calls` lists every attempt by call name."""

    attempts: int = 4
    recordings: list[FakeRecording] = field(default_factory=list)
    presets: dict[str, dict[str, str | None]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    # meeting id -> its live session (session id, peers present)
    sessions: dict[str, tuple[str, int]] = field(default_factory=dict)
    # calls answered 200 with a body not of the documented shape (the client's error)
    malformed: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail(
        self, call: str, status: int | None, *, count: int = 1, retry_after: float | None = None
    ) -> None:
        """The next `count` attempts of `call` fail with `status` (None: answer lost)."""
        self.faults.append(Fault(status, count, frozenset({call}), retry_after))

    def go_live(self, meeting_id: str, session_id: str, peers: int) -> None:
        """The meeting has a live session with this many peers (0 peers: it has none)."""
        if peers:
            self.sessions[meeting_id] = (session_id, peers)
        else:
            self.sessions.pop(meeting_id, None)

    def add_participant(self, meeting_id: str, custom_participant_id: str, preset: str) -> None:
        self.presets.setdefault(meeting_id, {})[custom_participant_id] = preset

    async def preset_of(self, meeting_id: str, custom_participant_id: str) -> str | None:
        self._answer_or_raise(await self._attempts("participants"), "participants")
        return self.presets.get(meeting_id, {}).get(custom_participant_id)

    async def active_recording(self, meeting_id: str) -> RtkRecording | None:
        answer = await self._attempts("active_recording", absent=True)
        self._answer_or_raise(answer, "active_recording")
        active = self._active(meeting_id)
        return None if active is None or answer == "absent" else self._rest(active)

    async def start_recording(self, meeting_id: str, params: Mapping[str, Any]) -> RtkRecording:
        lost = await self._attempts("start_recording")
        if params.get("allow_multiple_recordings") is not True and self._active(meeting_id):
            raise _refusal(
                "start_recording", 409, "A recording is already in progress for this meeting"
            )
        recording = FakeRecording(f"rec-{next(self._ids)}", meeting_id, "INVOKED", dict(params))
        self.recordings.append(recording)
        self._answer_or_raise(lost, "start_recording")
        return self._rest(recording)

    async def stop_recording(self, recording_id: str) -> RtkRecording | None:
        lost = await self._attempts("stop_recording", absent=True)
        found = [r for r in self.recordings if r.id == recording_id]
        if not found or lost == "absent":
            self._answer_or_raise(lost, "stop_recording")
            return None
        recording = found[0]
        if recording.status in _ENDED:
            raise _refusal("stop_recording", 400, "Recording is not active")
        recording.status = "STOPPED"
        self._answer_or_raise(lost, "stop_recording")
        return self._rest(recording)

    async def active_session(self, meeting_id: str) -> RtkSession | None:
        answer = await self._attempts("active_session", absent=True, tries=1)
        self._answer_or_raise(answer, "active_session")
        if "active_session" in self.malformed:
            return session_from(200, {"id": "s", "live_participants": "two", "status": "LIVE"})
        live = self.sessions.get(meeting_id)
        if live is None or answer == "absent":
            return None
        return RtkSession(live[0], live[1], "LIVE")

    async def get_recording(self, recording_id: str) -> RecordingInfo | None:
        answer = await self._attempts("get_recording", absent=True, tries=1)
        self._answer_or_raise(answer, "get_recording")
        found = [r for r in self.recordings if r.id == recording_id]
        if not found or answer == "absent":
            return None
        status = "UPLOADING" if found[0].status == "STOPPED" else found[0].status
        return RecordingInfo.model_validate({"id": recording_id, "status": status})

    async def _attempts(
        self, call: str, *, absent: bool = False, tries: int | None = None
    ) -> Answer:
        """Raise as the client would after this call's scripted faults; "lost" when the call
        is to take effect but its answer never arrive, "absent" for a 404 the call answers."""
        tries = self.attempts if tries is None else tries
        for attempt in range(1, tries + 1):
            self.calls.append(call)
            fault = next((f for f in self.faults if call in f.calls and f.count > 0), None)
            if fault is None:
                return "answer"
            fault.count -= 1
            if fault.status is None:
                return "lost"
            if fault.status == 404 and absent:
                return "absent"
            if not is_retriable(fault.status):
                raise _refusal(call, fault.status, "refused")
            if attempt == tries:
                failure = Failure(call, outcome_of(fault.status), fault.status, fault.retry_after)
                raise give_up(failure, attempts=attempt)
            self.waits.append(fault.retry_after or 0.0)
        return "answer"

    def _answer_or_raise(self, answer: Answer, call: str) -> None:
        if answer == "lost":
            raise give_up(Failure(call, "timeout", None), attempts=self.attempts)

    def _active(self, meeting_id: str) -> FakeRecording | None:
        for recording in reversed(self.recordings):
            if recording.meeting_id == meeting_id and recording.status not in _ENDED:
                return recording
        return None

    @staticmethod
    def _rest(recording: FakeRecording) -> RtkRecording:
        return RtkRecording(recording.id, recording.status, recording.meeting_id, None)


def _refusal(call: str, status: int, message: str) -> RtkApiError:
    return RtkApiError(
        f"RTK {call} failed: HTTP {status}: {message}", status=status, retriable=False
    )
