"""Everything one running emulator holds: its signing key, meetings, recordings, the log of API
calls it answered, the faults and latency it was told to inject, and its webhook sender."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from router.core.signature import generate_key_pair, load_private_key
from router.emulator.config import DropSpec, EmulatorConfig, MeetingScript
from router.emulator.meetings import MeetingBook
from router.emulator.recordings import RecordingBook
from router.emulator.webhooks import Drop, WebhookSender

log = logging.getLogger("router.emulator")


@dataclass(frozen=True)
class CallRecord:
    """One API call the emulator answered; `at` is its monotonic arrival time."""

    method: str
    path: str
    call: str
    status: int
    at: float
    meeting_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "call": self.call,
            "status": self.status,
            "at": self.at,
            "meeting_id": self.meeting_id,
        }


@dataclass
class Fault:
    """Answer the next `remaining` matching calls with `status` (and `Retry-After` if set).

    With `probability` below 1 each matching call is failed only with that chance (drawn from
    `rng`, seeded for a repeatable sequence), and `remaining` counts the calls actually failed.
    """

    status: int
    remaining: int
    calls: frozenset[str] | None = None
    retry_after: float | None = None
    message: str = "Injected fault"
    probability: float = 1.0
    # Chance, not secrecy: which calls fail only has to look random.
    rng: random.Random = field(default_factory=random.Random, repr=False)
    meetings: frozenset[str] | None = None  # only calls about these meeting ids

    def matches(self, call: str, meeting_id: str | None = None) -> bool:
        return (
            self.remaining > 0
            and (self.calls is None or call in self.calls)
            and (self.meetings is None or meeting_id in self.meetings)
        )

    def fires(self) -> bool:
        """Whether this matching call is failed (always, unless a probability is set)."""
        return self.probability >= 1.0 or self.rng.random() < self.probability

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remaining": self.remaining,
            "calls": sorted(self.calls) if self.calls is not None else None,
            "meetings": sorted(self.meetings) if self.meetings is not None else None,
            "retry_after": self.retry_after,
            "message": self.message,
            "probability": self.probability,
        }


class EmulatorState:
    """The state of one emulator, shared by its API and control handlers."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        private_pem = config.private_key_pem or generate_key_pair()[0]
        self.private_key = load_private_key(private_pem)
        self.sender = WebhookSender(
            url=config.webhook_url,
            private_key=self.private_key,
            webhook_id=config.webhook_id,
            attempts=config.webhook_attempts,
            backoff=config.webhook_backoff,
            timeout=config.webhook_timeout,
        )
        organization = {"id": config.organization_id, "name": config.organization_name}
        self.meetings = MeetingBook(sender=self.sender, organization=organization)
        self.recordings = RecordingBook(config=config, meetings=self.meetings, sender=self.sender)
        self.meetings.on_presence = self.recordings.presence_changed
        self.calls: list[CallRecord] = []
        self.faults: list[Fault] = []
        self.latency_ms = 0.0
        self.latency_calls: frozenset[str] | None = None
        self._plays: set[asyncio.Task[None]] = set()
        self._seed()

    def public_key_pem(self) -> str:
        """The public key as served; with the RTK quirk, newlines as literal `\\n` pairs."""
        pem = (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
        return pem.replace("\n", "\\n") if self.config.escape_public_key else pem

    def take_fault(self, call: str, meeting_id: str | None = None) -> Fault | None:
        """The first fault that applies to `call` about `meeting_id` (and fires), used up by one."""
        for fault in self.faults:
            if fault.matches(call, meeting_id) and fault.fires():
                fault.remaining -= 1
                return fault
        return None

    def drop(self, spec: DropSpec) -> Drop:
        """Lose the webhook deliveries `spec` names from now on."""
        drop = Drop(
            events=frozenset(spec.events) if spec.events is not None else None,
            meetings=frozenset(spec.meetings) if spec.meetings is not None else None,
            probability=spec.probability,
            remaining=spec.count,
            rng=random.Random(spec.seed),  # noqa: S311 - chance, not secrecy
        )
        self.sender.drops.append(drop)
        return drop

    def latency_for(self, call: str) -> float:
        if self.latency_calls is not None and call not in self.latency_calls:
            return 0.0
        return self.latency_ms / 1000.0

    def play(self, script: MeetingScript) -> None:
        """Play a scripted meeting in the background."""
        task = asyncio.create_task(self.meetings.play(script))
        self._plays.add(task)
        task.add_done_callback(self._plays.discard)

    async def plays_done(self) -> None:
        """Wait until every scripted meeting playing now has finished."""
        await asyncio.gather(*list(self._plays), return_exceptions=True)

    async def start(self) -> None:
        await self.sender.start()
        if self.config.seed.meetings:
            task = asyncio.create_task(self._play_seed())
            self._plays.add(task)
            task.add_done_callback(self._plays.discard)

    async def _play_seed(self) -> None:
        """The seed's meetings, once the webhook URL answers: started before the router, the
        emulator would otherwise play them to nobody."""
        if self.sender.url is not None:
            log.info("the seed's meetings start once %s answers", self.sender.url)
            await self.sender.wait_answering()
        for script in self.config.seed.meetings:
            self.play(script)

    async def reset(self) -> None:
        """Back to a fresh emulator with the same key, config and seed."""
        await self._stop_activity()
        self.sender.deliveries.clear()
        self.sender.drops.clear()
        self.meetings.meetings.clear()
        self.recordings.recordings.clear()
        self.calls.clear()
        self.faults.clear()
        self.latency_ms = 0.0
        self.latency_calls = None
        self._seed()

    async def close(self) -> None:
        await self._stop_activity()
        await self.sender.close()

    async def _stop_activity(self) -> None:
        plays = list(self._plays)
        for task in plays:
            task.cancel()
        await asyncio.gather(*plays, return_exceptions=True)
        await self.recordings.close()
        await self.sender.cancel()

    def _seed(self) -> None:
        for meeting_id, participants in self.config.seed.participants.items():
            self.meetings.add_participants(meeting_id, participants)
        for spec in self.config.seed.drops:
            self.drop(spec)


EMULATOR_STATE = web.AppKey("emulator_state", EmulatorState)


def app_states(config: EmulatorConfig) -> dict[str, EmulatorState]:
    """A state for each app the emulator serves, by app id, the main app's first; every app
    signs its webhooks with the one key (as RTK does)."""
    main = EmulatorState(config)
    pem = main.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    states = {config.app_id: main}
    for app_id, token in config.more_apps.items():
        more = replace(config, app_id=app_id, api_token=token, more_apps={}, private_key_pem=pem)
        states[app_id] = EmulatorState(more)
    return states


# Every app's state by app id (the main app's is also `EMULATOR_STATE`).
EMULATOR_APPS = web.AppKey("emulator_apps", dict[str, EmulatorState])
