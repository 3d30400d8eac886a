"""The emulator's settings, and the seed and script files users hand it (parsed strictly, so a
typo in a seed file is an error rather than a silently empty meeting)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ACTIVE_STATUSES = frozenset({"INVOKED", "RECORDING", "PAUSED"})
# What the emulator reads from outside, at most: a request body (API or control), the answer
# to a webhook it delivered (only its status is used), a seed file.
MAX_REQUEST_BYTES = 1_048_576
MAX_WEBHOOK_ANSWER_BYTES = 65_536
MAX_SEED_BYTES = 4 * 1_048_576
RECORDING_STATUSES = ("INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED", "ERRORED")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParticipantSeed(_Strict):
    """A participant added to a meeting, as RTK's participants API lists it."""

    custom_participant_id: str = Field(min_length=1)
    preset_name: str = Field(min_length=1)
    name: str | None = None


class ScriptStep(_Strict):
    """One step of a scripted meeting, `at` seconds after the script starts playing."""

    at: float = Field(default=0.0, ge=0)
    action: Literal["join", "leave", "end"]
    participant: str | None = None  # the custom participant id
    name: str | None = None  # display name on join
    preset: str | None = None  # added to the meeting's participants on join when given
    peer_id: str | None = None  # a second join of one participant is a second peer
    reason: str = "HOST_ENDED_MEETING"  # for `end`

    @model_validator(mode="after")
    def _needs_someone(self) -> Self:
        if self.action == "join" and not self.participant:
            raise ValueError("a join needs a participant")
        if self.action == "leave" and not (self.participant or self.peer_id):
            raise ValueError("a leave needs a participant or a peer_id")
        return self


class MeetingScript(_Strict):
    """Joins and leaves to play against one meeting."""

    meeting_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    title: str = "Emulated meeting"
    end_when_empty: bool = True  # the last leave ends the session, as RTK does
    steps: list[ScriptStep] = Field(default_factory=list)


class DropSpec(_Strict):
    """Webhook deliveries to lose for good: of these event types, about these meetings (either
    omitted: any), each with `probability`, at most `count` of them (omitted: no end)."""

    events: list[str] | None = None
    meetings: list[str] | None = None
    probability: float = Field(default=1.0, gt=0, le=1)
    count: int | None = Field(default=None, ge=1)
    seed: int | None = None  # repeats the draws of a probability


class Seed(_Strict):
    """A seed file: participants per meeting, meetings to play once the emulator runs, and
    webhook deliveries to lose."""

    participants: dict[str, list[ParticipantSeed]] = Field(default_factory=dict)
    meetings: list[MeetingScript] = Field(default_factory=list)
    drops: list[DropSpec] = Field(default_factory=list)


def load_seed(path: Path) -> Seed:
    """Read a YAML or JSON seed file; `ValueError` says what is wrong with it."""
    try:
        with path.open("rb") as seed_file:
            text = seed_file.read(MAX_SEED_BYTES + 1)
        if len(text) > MAX_SEED_BYTES:
            raise ValueError(f"{path}: larger than {MAX_SEED_BYTES} bytes")
        raw = yaml.safe_load(text.decode("utf-8"))
        return Seed.model_validate(raw if raw is not None else {})
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator behaves; every default suits tests and a local loop."""

    account_id: str = "emulator-account"
    app_id: str = "emulator-app"
    api_token: str = "emulator-token"  # noqa: S105 - a well-known token for a local fake
    webhook_url: str | None = None
    webhook_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    private_key_pem: bytes | None = None  # None: a fresh key pair per emulator
    escape_public_key: bool = False  # serve the PEM with literal `\n`, as RTK has been seen to
    start_delay: float = 0.2  # INVOKED -> RECORDING
    upload_delay: float = 0.2  # UPLOADING -> UPLOADED
    idle_stop_seconds: float | None = 60.0  # RTK stops recording an empty meeting after 1 min
    webhook_attempts: int = 4
    webhook_backoff: float = 0.1  # doubled after each failed attempt
    webhook_timeout: float = 3.0
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    organization_name: str = "Emulated organization"
    seed: Seed = field(default_factory=Seed)
    # More apps served beside `app_id`, by path as RTK does: app id -> its API token. Each
    # has its own meetings, recordings, calls, faults and webhook URL (one signing key).
    more_apps: Mapping[str, str] = field(default_factory=dict)
