"""The RealtimeKit REST client: the only module that talks to RTK.

Every call goes through one loop (`RtkClient._call`): an attempt, counted in
`router_rtk_api_calls_total`, then either an answer, an `RtkApiError` that is not worth
repeating, or a wait and another attempt (see `router.rtk_retry`). Recording calls also pass a
client-side rate limit that keeps under RTK's recording API limit. Nothing here holds a lock
across a wait, so a call that retries delays only the coroutine that made it.

The token, the Authorization header and request bodies (a start may carry storage
credentials) never appear in errors, logs or reprs.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from aiolimiter import AsyncLimiter

from router import clock
from router.core.entities import RecordingInfo
from router.core.redaction import CREDENTIAL_FIELDS
from router.errors import AnswerTooLarge, RtkApiError
from router.limited import read_limited
from router.metrics import Metrics
from router.rtk_models import (
    Envelope,
    RtkParticipant,
    RtkRecording,
    RtkSession,
    participants_from,
    recording_from,
    session_from,
)
from router.rtk_presets import PresetCache
from router.rtk_retry import Failure, Retrier, is_retriable, outcome_of, parse_retry_after

_RECORDING_CALLS = frozenset(
    {"active_recording", "start_recording", "stop_recording", "get_recording", "active_session"}
)
_PER_PAGE = 100
_MAX_PAGES = 1000  # 100,000 participants: far beyond any meeting, short of an endless loop
_MAX_MESSAGE = 120

__all__ = ["RtkClient", "RtkParticipant", "RtkRecording", "RtkSession"]


@dataclass(frozen=True)
class _Answer:
    status: int
    envelope: Envelope
    retry_after: float | None


class RtkClient:
    """Calls RTK's recording and participant APIs for one account and app."""

    def __init__(
        self,
        *,
        base_url: str,
        account_id: str,
        app_id: str,
        api_token: str,
        metrics: Metrics | None = None,
        retry_seconds: float = 600.0,
        request_timeout: float = 10.0,
        max_answer_bytes: int = 1_048_576,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rate_limit: tuple[int, float] = (1000, 50.0),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = clock.monotonic,
        session: aiohttp.ClientSession | None = None,
        preset_cache_meetings: int = 10_000,
        preset_refetch_seconds: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._prefix = (
            f"{base_url.rstrip('/')}/accounts/{quote(account_id, safe='')}"
            f"/realtime/kit/{quote(app_id, safe='')}"
        )
        self._token = api_token
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_answer = max_answer_bytes
        self._limiter = AsyncLimiter(*rate_limit)
        self._retrier = Retrier(
            budget=retry_seconds,
            base=backoff_base,
            cap=backoff_cap,
            sleep=sleep,
            monotonic=monotonic,
            rng=rng,
        )
        self._session = session
        self._owns_session = session is None
        self._presets = PresetCache(
            self.participants,
            max_meetings=preset_cache_meetings,
            refetch_seconds=preset_refetch_seconds,
            monotonic=monotonic,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"RtkClient({self._prefix!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session, unless it was handed in."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def active_recording(self, meeting_id: str) -> RtkRecording | None:
        """The meeting's active recording, or None when RTK has none (404)."""
        path = f"/recordings/active-recording/{quote(meeting_id, safe='')}"
        answer = await self._call("active_recording", "GET", path, passthrough=(404,))
        if answer.status == 404 or answer.envelope.data is None:
            return None
        return recording_from("active_recording", answer.status, answer.envelope.data, meeting_id)

    async def start_recording(self, meeting_id: str, params: Mapping[str, Any]) -> RtkRecording:
        """Start recording the meeting; `params` are any other fields of the start API."""
        body = {"meeting_id": meeting_id, **{k: v for k, v in params.items() if k != "meeting_id"}}
        answer = await self._call("start_recording", "POST", "/recordings", body=body)
        return recording_from("start_recording", answer.status, answer.envelope.data, meeting_id)

    async def stop_recording(self, recording_id: str) -> RtkRecording | None:
        """Stop a recording; None when RTK does not know it (404)."""
        path = f"/recordings/{quote(recording_id, safe='')}"
        answer = await self._call(
            "stop_recording", "PUT", path, body={"action": "stop"}, passthrough=(404,)
        )
        if answer.status == 404:
            return None
        return recording_from("stop_recording", answer.status, answer.envelope.data, None)

    async def active_session(self, meeting_id: str) -> RtkSession | None:
        """The meeting's live session, or None when it has none (404). One attempt: the
        reconciler that asks paces and backs off itself, and asks again next round."""
        path = f"/meetings/{quote(meeting_id, safe='')}/active-session"
        answer = await self._call(
            "active_session", "GET", path, passthrough=(404,), deadline=self._once()
        )
        if answer.status == 404:
            return None
        return session_from(answer.status, answer.envelope.data)

    async def get_recording(self, recording_id: str) -> RecordingInfo | None:
        """One recording with every field RTK reports, or None when RTK does not know it
        (404). One attempt, like `active_session`."""
        path = f"/recordings/{quote(recording_id, safe='')}"
        answer = await self._call(
            "get_recording", "GET", path, passthrough=(404,), deadline=self._once()
        )
        if answer.status == 404:
            return None
        try:
            return RecordingInfo.model_validate(answer.envelope.data)
        except ValueError:  # (pydantic's ValidationError)
            raise RtkApiError(
                f"RTK get_recording: HTTP {answer.status} without a recording id and status",
                status=answer.status,
                retriable=False,
            ) from None

    def _once(self) -> float:
        """A deadline that allows no retry."""
        return self._retrier.deadline() - self._retrier.budget

    async def participants(self, meeting_id: str) -> list[RtkParticipant]:
        """Every participant added to the meeting, read page by page."""
        path = f"/meetings/{quote(meeting_id, safe='')}/participants"
        deadline = self._retrier.deadline()  # one budget for the whole listing
        found: list[RtkParticipant] = []
        seen = 0
        for page_no in range(1, _MAX_PAGES + 1):
            query = {"page_no": str(page_no), "per_page": str(_PER_PAGE)}
            answer = await self._call("participants", "GET", path, query=query, deadline=deadline)
            rows = answer.envelope.data if isinstance(answer.envelope.data, list) else []
            seen += len(rows)
            found.extend(participants_from(rows))
            total = answer.envelope.total_count
            if not rows or (total is not None and seen >= total):
                break
            if total is None and len(rows) < _PER_PAGE:
                break
        return found

    async def preset_of(self, meeting_id: str, custom_participant_id: str) -> str | None:
        """The preset of a participant of the meeting, from a per-meeting cache."""
        return await self._presets.preset_of(meeting_id, custom_participant_id)

    def forget_meeting(self, meeting_id: str) -> None:
        """Drop the meeting's cached presets (for example when it ends)."""
        self._presets.forget(meeting_id)

    async def _call(
        self,
        call: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        deadline: float | None = None,
        passthrough: tuple[int, ...] = (),
    ) -> _Answer:
        deadline = self._retrier.deadline() if deadline is None else deadline
        attempt = 0
        while True:
            attempt += 1
            result = await self._attempt(call, method, self._prefix + path, body, query)
            if isinstance(result, _Answer):
                if 200 <= result.status < 300 or result.status in passthrough:
                    return result
                failure = Failure(
                    call,
                    outcome_of(result.status),
                    result.status,
                    result.retry_after,
                    self._message_of(result.envelope, body),
                )
                if not is_retriable(result.status):
                    raise RtkApiError(
                        f"RTK {call} failed: {failure.describe()}",
                        status=result.status,
                        retriable=False,
                    )
            else:
                failure = result
            await self._retrier.pause(failure, attempt=attempt, deadline=deadline)

    async def _attempt(
        self,
        call: str,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None,
    ) -> _Answer | Failure:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            if call in _RECORDING_CALLS:
                await self._limiter.acquire()
            async with self._session.request(
                method, url, json=body, params=query, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raw = await read_limited(
                    response, self._max_answer, f"the answer to {call}", "max_answer_bytes"
                )
        except AnswerTooLarge as exc:
            # Worth another attempt (and for a start, RTK may have carried it out: the flow
            # checks the active recording once the budget is spent).
            self._count(call, "too_large")
            return Failure(call, "too_large", None, message=str(exc))
        except TimeoutError:
            self._count(call, "timeout")
            return Failure(call, "timeout", None)
        except aiohttp.InvalidURL:
            self._count(call, "connection_error")
            raise RtkApiError(
                f"RTK {call} failed: invalid URL", status=None, retriable=False
            ) from None
        except aiohttp.ClientError as exc:
            self._count(call, "connection_error")
            return Failure(call, "connection_error", None, message=type(exc).__name__)
        self._count(call, outcome_of(status))
        return _Answer(status, Envelope.parse(raw), retry_after)

    def _count(self, call: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.rtk_api_calls.labels(call=call, outcome=outcome).inc()

    def _message_of(self, envelope: Envelope, body: Mapping[str, Any] | None) -> str:
        """RTK's own error message, short, and never echoing the token or a credential of the
        request (redacted before it is shortened, so that no piece of one survives a cut)."""
        message = envelope.message
        for secret in sorted({self._token, *_credentials(body)}, key=len, reverse=True):
            if secret:
                message = message.replace(secret, "***")
        return message[:_MAX_MESSAGE]


def _credentials(value: object) -> set[str]:
    """Every string value of a credential field, at any depth of a request body."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in CREDENTIAL_FIELDS and isinstance(item, str):
                found.add(item)
            else:
                found |= _credentials(item)
    elif isinstance(value, list):
        for item in value:
            found |= _credentials(item)
    return found
