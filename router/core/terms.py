"""The words decisions are made of, defined once: the policy's `Mode`, the `RuleAction` a rule
names, the `Action` a decision records, its `Outcome`, and `DeadLetter`, why an event goes to
the dead-letter topic and at which stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["enforce", "shadow"]
# What a rule of the policy may say to do.
RuleAction = Literal["start_recording", "stop_recording", "skip"]
# What a decision records as decided ("none": no rule matched, or a skip rule did).
Action = Literal["start_recording", "stop_recording", "none"]
Outcome = Literal[
    "started",
    "stopped",
    "already_recording",
    "not_recording",
    "shadow",
    "no_match",
    "skipped",
    "failed",
]
# Where processing gave up on an event (the `router-stage` header of its dead-letter copy).
Stage = Literal["parse", "handler", "effects", "worker"]


@dataclass(frozen=True)
class DeadLetter:
    """Why an event is dead-lettered, and at which stage."""

    reason: str
    stage: Stage = "effects"
