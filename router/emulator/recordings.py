"""Recordings in the emulator and their life: INVOKED, RECORDING after a short delay (as a
worker picks the job up), PAUSED and back on request, then UPLOADING when stopped and UPLOADED
a little later, each change after INVOKED announced by a signed `recording.statusUpdate`.

Like RTK, a meeting has one active recording unless a start asks for
`allow_multiple_recordings`; `max_seconds`, and a meeting left empty for `idle_stop_seconds`,
stop a recording on their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router import clock
from router.clock import rfc3339
from router.emulator.config import ACTIVE_STATUSES, EmulatorConfig
from router.emulator.meetings import MeetingBook
from router.emulator.webhooks import WebhookSender
from router.samples import sample_payload

# Write-only fields of the start API (storage credentials) are never shown back.
_SECRET_KEYS = frozenset({"secret", "access_key", "secret_key", "password", "private_key"})
_BYTES_PER_SECOND = 83_333  # RTK's average of about 300 MB per recorded hour


class ApiProblem(Exception):
    """An RTK-style error answer: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Recording:
    id: str
    meeting_id: str
    session_id: str
    params: dict[str, Any]
    invoked_at: dt.datetime
    output_file_name: str
    status: str = "INVOKED"
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    file_size: int | None = None
    download_url: str | None = None
    audio_download_url: str | None = None
    download_url_expiry: dt.datetime | None = None
    stop_reason: str | None = None
    history: list[str] = field(default_factory=lambda: ["INVOKED"])

    @property
    def duration(self) -> int | None:
        if self.started_at is None or self.stopped_at is None:
            return None
        return max(0, round((self.stopped_at - self.started_at).total_seconds()))

    def rest(self) -> dict[str, Any]:
        """The recording as RTK's REST API shows it (snake_case)."""
        return {
            "id": self.id,
            "status": self.status,
            "session_id": self.session_id,
            "invoked_time": rfc3339(self.invoked_at),
            "started_time": _time(self.started_at),
            "stopped_time": _time(self.stopped_at),
            "output_file_name": self.output_file_name,
            "download_url": self.download_url,
            "audio_download_url": self.audio_download_url,
            "download_url_expiry": _time(self.download_url_expiry),
            "file_size": self.file_size,
            "recording_duration": self.duration,
            "start_reason": {"reason": "API_CALL", "caller": {"type": "ORGANIZATION"}},
            "stop_reason": {"reason": self.stop_reason} if self.stop_reason else None,
        }

    def webhook(self) -> dict[str, Any]:
        """The recording as a `recording.statusUpdate` carries it (camelCase)."""
        return {
            "id": self.id,
            "recordingId": self.id,
            "status": self.status,
            "meetingId": self.meeting_id,
            "roomUUID": self.session_id,
            "outputFileName": self.output_file_name,
            "startedTime": _time(self.started_at),
            "stoppedTime": _time(self.stopped_at),
            # RTK has sent the size as a string; the emulator does too, to keep readers honest.
            "fileSize": None if self.file_size is None else str(self.file_size),
            "downloadUrl": self.download_url,
            "audioDownloadUrl": self.audio_download_url,
            "downloadUrlExpiry": _time(self.download_url_expiry),
            "recordingDuration": self.duration,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.rest(),
            "meeting_id": self.meeting_id,
            "params": self.params,
            "history": self.history,
        }


class RecordingBook:
    """Every recording started on the emulator, with the timers that move them along."""

    def __init__(
        self, *, config: EmulatorConfig, meetings: MeetingBook, sender: WebhookSender
    ) -> None:
        self._config = config
        self._meetings = meetings
        self._sender = sender
        self.recordings: dict[str, Recording] = {}
        self._timers: dict[str, set[asyncio.Task[None]]] = {}

    def active(self, meeting_id: str) -> Recording | None:
        found = [
            r
            for r in self.recordings.values()
            if r.meeting_id == meeting_id and r.status in ACTIVE_STATUSES
        ]
        return found[-1] if found else None

    def get(self, recording_id: str) -> Recording:
        recording = self.recordings.get(recording_id)
        if recording is None:
            raise ApiProblem(404, "Recording not found")
        return recording

    def start(self, params: Mapping[str, Any]) -> Recording:
        meeting_id = params.get("meeting_id")
        if not isinstance(meeting_id, str) or not meeting_id:
            raise ApiProblem(400, "meeting_id is required")
        if params.get("allow_multiple_recordings") is not True and self.active(meeting_id):
            raise ApiProblem(409, "A recording is already in progress for this meeting")
        meeting = self._meetings.get(meeting_id)
        now = clock.now()
        prefix = params.get("file_name_prefix")
        name = prefix if isinstance(prefix, str) and prefix else meeting_id
        recording = Recording(
            id=str(uuid.uuid4()),
            meeting_id=meeting_id,
            session_id=meeting.session_id or str(uuid.uuid4()),
            params=_redacted(params),
            invoked_at=now,
            output_file_name=f"{name}_{int(now.timestamp() * 1000)}.mp4",
        )
        self.recordings[recording.id] = recording
        self._later(recording.id, self._config.start_delay, lambda: self._begin(recording))
        return recording

    def act(self, recording_id: str, action: object) -> Recording:
        recording = self.get(recording_id)
        wanted = {"stop": ACTIVE_STATUSES, "pause": {"RECORDING"}, "resume": {"PAUSED"}}
        if not isinstance(action, str) or action not in wanted:
            raise ApiProblem(400, "action must be one of stop, pause, resume")
        if recording.status not in wanted[action]:
            raise ApiProblem(400, f"Cannot {action} a recording that is {recording.status}")
        if action == "stop":
            self._stop(recording, "API_CALL")
        else:
            self._change(recording, "PAUSED" if action == "pause" else "RECORDING")
        return recording

    def force(self, recording_id: str, status: str) -> Recording:
        """Set a status as given, whatever the order, and announce it (for tests)."""
        recording = self.get(recording_id)
        self._cancel_timers(recording.id)
        self._change(recording, status)
        return recording

    def presence_changed(self, meeting_id: str, anyone: bool) -> None:
        """Like RTK, stop a meeting's recordings once nobody has been there for a while."""
        key = f"idle:{meeting_id}"
        self._cancel_timers(key)
        idle = self._config.idle_stop_seconds
        if not anyone and idle is not None:
            self._later(key, idle, lambda: self._stop_all(meeting_id, "ALL_PEERS_LEFT"))

    def _stop_all(self, meeting_id: str, reason: str) -> None:
        for recording in list(self.recordings.values()):
            if recording.meeting_id == meeting_id and recording.status in ACTIVE_STATUSES:
                self._stop(recording, reason)

    async def close(self) -> None:
        timers = [t for tasks in self._timers.values() for t in tasks]
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._timers.clear()

    def _begin(self, recording: Recording) -> None:
        self._change(recording, "RECORDING")
        max_seconds = recording.params.get("max_seconds")
        if isinstance(max_seconds, int | float) and max_seconds > 0:
            self._later(
                recording.id, float(max_seconds), lambda: self._stop(recording, "MAX_SECONDS")
            )

    def _stop(self, recording: Recording, reason: str) -> None:
        self._cancel_timers(recording.id)
        recording.stop_reason = reason
        self._change(recording, "UPLOADING")
        self._later(
            recording.id, self._config.upload_delay, lambda: self._change(recording, "UPLOADED")
        )

    def _change(self, recording: Recording, status: str) -> None:
        now = clock.now()
        if status in ("RECORDING", "PAUSED") and recording.started_at is None:
            recording.started_at = now
        if status in ("UPLOADING", "UPLOADED"):
            recording.started_at = recording.started_at or now
            recording.stopped_at = recording.stopped_at or now
            recording.file_size = max(1, (recording.duration or 0) * _BYTES_PER_SECOND)
        if status == "UPLOADED":
            base = f"https://storage.emulator.invalid/recordings/{recording.id}"
            recording.download_url = f"{base}/{recording.output_file_name}"
            audio = recording.params.get("audio_config")
            if isinstance(audio, Mapping) and audio.get("export_file"):
                recording.audio_download_url = f"{base}/audio.mp3"
            recording.download_url_expiry = now + dt.timedelta(days=7)
        recording.status = status
        recording.history.append(status)
        meeting = self._meetings.get(recording.meeting_id)
        payload = sample_payload(
            "recording.statusUpdate",
            now=now,
            meeting_id=recording.meeting_id,
            session_id=recording.session_id,
            recording={"id": recording.id, "status": status},
            meeting=self._meetings.meeting_fields(meeting, recording.session_id),
        )
        # The emulator's own fields replace the sample's: only what this recording has is sent.
        fields = {**recording.webhook(), "organizationId": self._config.organization_id}
        payload["recording"] = {k: v for k, v in fields.items() if v is not None}
        self._sender.send(recording.id, payload, meeting_id=recording.meeting_id)

    def _later(self, key: str, delay: float, action: Callable[[], None]) -> None:
        """Run `action` after `delay`, unless the timers of `key` are cancelled first."""

        async def fire() -> None:
            await asyncio.sleep(delay)
            action()

        task = asyncio.create_task(fire())
        timers = self._timers.setdefault(key, set())
        timers.add(task)
        task.add_done_callback(timers.discard)

    def _cancel_timers(self, key: str) -> None:
        current = asyncio.current_task()
        for task in self._timers.get(key, set()):
            if task is not current:
                task.cancel()


def _time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: "***" if k in _SECRET_KEYS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value
