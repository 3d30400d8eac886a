"""Comparing a candidate policy's decisions with the recorded ones, delivery by delivery, and
the report `router backtest` prints (SPEC 9.4).

Decisions are compared by `delivery_id`: a decision changed when its outcome or its rule
differ, or when only one side decided (the candidate has no rule for the event's type, or the
recorded policy had none). A meeting session *gains* a recording when the candidate would
start one in it and the recorded decisions did not, and *loses* one in the opposite case.
"Would start" is a `started` outcome, or a `shadow` one whose action is a start with no
recording known (what shadow mode writes where enforce mode would have started), so that a
shadow run compares with an enforced one by what each would have recorded. The report names
meetings, each once, sorted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from router.core.records import PolicyDecision

# Malformed records named one by one in the report (the rest are counted).
MAX_SHOWN = 100
# How a missing side (no decision at all) or a decision without a rule is printed.
NOTHING = "-"


@dataclass(frozen=True)
class Decided:
    """What a decision says, as far as a backtest compares it."""

    delivery_id: str
    meeting_id: str
    session_id: str | None
    outcome: str
    rule: str | None
    action: str
    recording_id: str | None = None
    preset: str | None = None

    @property
    def would_start(self) -> bool:
        """Whether the decision starts a recording (or would have, in shadow mode)."""
        if self.outcome == "started":
            return True
        return (
            self.outcome == "shadow"
            and self.action == "start_recording"
            and self.recording_id is None
        )


class _Participant(BaseModel):
    model_config = ConfigDict(extra="ignore")
    preset: str | None = None


class _DecisionDoc(BaseModel):
    """A `policy.decision` as the decisions topic holds it (fields not compared ignored)."""

    model_config = ConfigDict(extra="ignore")
    type: str
    delivery_id: str | None = None
    meeting_id: str
    session_id: str | None = None
    outcome: str
    rule: str | None = None
    action: str = "none"
    recording_id: str | None = None
    participant: _Participant | None = None


def read_decision(value: bytes | None) -> Decided | None:
    """A decision from the decisions topic, or None for a message that is not one."""
    if not value:
        return None
    try:
        doc = _DecisionDoc.model_validate_json(value)
    except ValidationError:
        return None
    if doc.type != "policy.decision":
        return None
    return decided(doc)


def decided(decision: PolicyDecision | _DecisionDoc) -> Decided | None:
    """What a decision record says (None: it has no delivery id to compare by)."""
    if not decision.delivery_id:
        return None
    return Decided(
        delivery_id=decision.delivery_id,
        meeting_id=decision.meeting_id,
        session_id=decision.session_id,
        outcome=decision.outcome,
        rule=decision.rule,
        action=decision.action,
        recording_id=decision.recording_id,
        preset=decision.participant.preset if decision.participant else None,
    )


@dataclass(frozen=True)
class Change:
    """One delivery decided differently (a side of None: no decision on that side)."""

    delivery_id: str
    meeting_id: str
    recorded: Decided | None
    candidate: Decided | None

    def line(self) -> str:
        """`<delivery_id>  <meeting_id>  <recorded outcome> (<rule>) -> <candidate ...>`."""
        return (
            f"{self.delivery_id}  {self.meeting_id}  "
            f"{_side(self.recorded)} -> {_side(self.candidate)}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "meeting_id": self.meeting_id,
            "recorded": _side_json(self.recorded),
            "candidate": _side_json(self.candidate),
        }


def _side(decided: Decided | None) -> str:
    if decided is None:
        return f"{NOTHING} ({NOTHING})"
    return f"{decided.outcome} ({decided.rule or NOTHING})"


def _side_json(decided: Decided | None) -> dict[str, str | None]:
    if decided is None:
        return {"outcome": None, "rule": None}
    return {"outcome": decided.outcome, "rule": decided.rule}


Session = tuple[str, str | None]


@dataclass
class Comparison:
    """The running comparison: fed one replayed event at a time, in log order."""

    events: int = 0
    malformed: int = 0
    # `<where>: <why>` of the first MAX_SHOWN malformed records, in log order.
    malformed_shown: list[str] = field(default_factory=list)
    recorded: Counter[str] = field(default_factory=Counter)
    candidate: Counter[str] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    _recorded_starts: dict[Session, None] = field(default_factory=dict)
    _candidate_starts: dict[Session, None] = field(default_factory=dict)

    @classmethod
    def merged(cls, parts: Iterable[Comparison]) -> Comparison:
        """One comparison of the parts' events, in the parts' order (each part a partition:
        a meeting session is never in two of them)."""
        whole = cls()
        for part in parts:
            whole.events += part.events
            whole.malformed += part.malformed
            room = MAX_SHOWN - len(whole.malformed_shown)
            whole.malformed_shown += part.malformed_shown[:room]
            whole.recorded += part.recorded
            whole.candidate += part.candidate
            whole.changes += part.changes
            whole._recorded_starts.update(part._recorded_starts)
            whole._candidate_starts.update(part._candidate_starts)
        return whole

    def add_malformed(self, where: str) -> None:
        """A record of the log the replay could not decide on (dead-lettered, as the worker
        would have)."""
        self.malformed += 1
        if len(self.malformed_shown) < MAX_SHOWN:
            self.malformed_shown.append(where)

    def add(self, recorded: Decided | None, candidate: Decided | None) -> None:
        """The two decisions for one delivery (either may be missing)."""
        for side, counts, starts in (
            (recorded, self.recorded, self._recorded_starts),
            (candidate, self.candidate, self._candidate_starts),
        ):
            if side is None:
                continue
            counts[side.outcome] += 1
            if side.would_start:
                starts[side.meeting_id, side.session_id] = None
        either = recorded or candidate
        if either is None:
            return
        same = (
            recorded is not None
            and candidate is not None
            and (recorded.outcome, recorded.rule) == (candidate.outcome, candidate.rule)
        )
        if not same:
            self.changes.append(Change(either.delivery_id, either.meeting_id, recorded, candidate))

    @property
    def gained(self) -> list[str]:
        """Meetings with a session the candidate records and the recorded decisions did not."""
        return _meetings(s for s in self._candidate_starts if s not in self._recorded_starts)

    @property
    def lost(self) -> list[str]:
        """Meetings with a session the recorded decisions recorded and the candidate would not."""
        return _meetings(s for s in self._recorded_starts if s not in self._candidate_starts)

    def as_json(self) -> dict[str, Any]:
        """The `--json` document of SPEC 9.4."""
        return {
            "summary": {
                "events": self.events,
                "changed": len(self.changes),
                "gained": self.gained,
                "lost": self.lost,
                "recorded": dict(sorted(self.recorded.items())),
                "candidate": dict(sorted(self.candidate.items())),
            },
            "changed": [change.as_json() for change in self.changes],
        }

    def lines(self, heading: str) -> list[str]:
        """The printed report: a heading, the table of outcomes, gained and lost meetings,
        malformed records, one line per changed decision."""
        outcomes = sorted(set(self.recorded) | set(self.candidate))
        width = max([len("outcome"), *(len(o) for o in outcomes)])
        out = [
            heading,
            f"{self.events:,} events replayed, {len(self.changes):,} decisions changed",
            "",
            f"{'outcome':<{width}}  {'recorded':>9}  {'candidate':>9}",
        ]
        out += [
            f"{outcome:<{width}}  {self.recorded[outcome]:>9,}  {self.candidate[outcome]:>9,}"
            for outcome in outcomes
        ]
        total = sum(self.recorded.values()), sum(self.candidate.values())
        out.append(f"{'total':<{width}}  {total[0]:>9,}  {total[1]:>9,}")
        out += ["", _listed("would gain a recording", self.gained)]
        out.append(_listed("would lose a recording", self.lost))
        if self.malformed:
            out += ["", f"malformed records, not decided ({self.malformed:,}):"]
            out += [f"  {where}" for where in self.malformed_shown]
            if self.malformed > len(self.malformed_shown):
                out.append(f"  ... and {self.malformed - len(self.malformed_shown):,} more")
        out += ["", f"changed decisions ({len(self.changes):,}):"]
        out += [change.line() for change in self.changes]
        return out


def _listed(what: str, meetings: list[str]) -> str:
    return f"{what} ({len(meetings)}): {', '.join(meetings) if meetings else NOTHING}"


def _meetings(sessions: Iterable[Session]) -> list[str]:
    return sorted({meeting for meeting, _ in sessions})
