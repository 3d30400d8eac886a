"""Running the decision flow against RTK: each request it yields becomes one call of a
`RecordingApi`, and each call's result or `RtkApiError` becomes the answer sent back.

`RecordingApi` is what the flow needs of RTK, as the RTK client offers it (its retries, rate
limit and preset cache stay inside the client). A call fails by raising `RtkApiError`; any
other exception is a bug and leaves the flow unfinished.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, Protocol, TypeVar, assert_never

from router.core.entities import RecordingInfo
from router.core.rtk_requests import (
    Answer,
    CallFailed,
    GetActiveRecording,
    LookUpPreset,
    PresetFound,
    RecordingFound,
    Request,
    SeenRecording,
    StartRecording,
    StopRecording,
)
from router.errors import RtkApiError
from router.rtk_models import RtkRecording, RtkSession

T = TypeVar("T")


class RecordingApi(Protocol):
    """The RTK operations a decision, or reconciliation, may need; failures raise
    `RtkApiError`."""

    async def preset_of(self, meeting_id: str, custom_participant_id: str) -> str | None:
        """The participant's preset, or None when RTK has none for it."""

    async def active_recording(self, meeting_id: str) -> RtkRecording | None:
        """The meeting's active recording, or None."""

    async def start_recording(self, meeting_id: str, params: Mapping[str, Any]) -> RtkRecording:
        """Start recording the meeting with these fields of the start API."""

    async def stop_recording(self, recording_id: str) -> RtkRecording | None:
        """Stop the recording; None when RTK does not know it."""

    async def active_session(self, meeting_id: str) -> RtkSession | None:
        """The meeting's active session, or None when it has none (reconciliation)."""

    async def get_recording(self, recording_id: str) -> RecordingInfo | None:
        """One recording as RTK reports it now, or None when RTK does not know it."""


async def drive(
    flow: Generator[Request, Answer, T], api: RecordingApi, request: Request | None = None
) -> T:
    """Run the flow to its end, answering every request through `api`; `request`: the one
    it already yielded, when it was started elsewhere."""
    try:
        if request is None:
            request = next(flow)
        while True:
            request = flow.send(await answer(request, api))
    except StopIteration as done:
        result: T = done.value
        return result


def without_calls(flow: Generator[Request, Answer, T]) -> T:
    """Run a flow that may call nothing (`can_call` False) to its end."""
    try:
        request = next(flow)
    except StopIteration as done:
        result: T = done.value
        return result
    flow.close()
    msg = f"a flow that may call nothing asked for {request!r}"
    raise RuntimeError(msg)


async def answer(request: Request, api: RecordingApi) -> Answer:
    """One request carried out; a failed call is an answer too."""
    try:
        if isinstance(request, LookUpPreset):
            preset = await api.preset_of(request.meeting_id, request.custom_participant_id)
            return PresetFound(preset)
        if isinstance(request, GetActiveRecording):
            return RecordingFound(_seen(await api.active_recording(request.meeting_id)))
        if isinstance(request, StartRecording):
            started = await api.start_recording(request.meeting_id, request.params)
            return RecordingFound(_seen(started))
        if isinstance(request, StopRecording):
            return RecordingFound(_seen(await api.stop_recording(request.recording_id)))
    except RtkApiError as exc:
        return failure_of(exc)
    assert_never(request)


def failure_of(exc: RtkApiError) -> CallFailed:
    """The answer for a failed call: no status and worth retrying means none arrived."""
    return CallFailed(
        message=str(exc),
        status=exc.status,
        retriable=exc.retriable,
        retry_after=exc.retry_after,
        timed_out=exc.status is None and exc.retriable,
    )


def _seen(recording: RtkRecording | None) -> SeenRecording | None:
    if recording is None:
        return None
    return SeenRecording(recording.id, recording.status, recording.session_id)
