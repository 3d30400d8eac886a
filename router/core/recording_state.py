"""The status order of a recording, and the one judgement made with it: is a new status a real
change worth publishing, or a duplicate, a regression or news from after the end?

RTK promises no ordering and retries deliveries, so `UPLOADED` may arrive before `UPLOADING`,
and `RECORDING` twice. Consumers of the recordings topic are promised instead that statuses
only move forward:

    INVOKED < RECORDING = PAUSED < UPLOADING < UPLOADED        ERRORED ends it from anywhere

`RECORDING` and `PAUSED` share a rank and may follow each other both ways. Once a recording is
`UPLOADED` or `ERRORED` nothing more is published for it. A late status is dropped, never
re-ordered: what was published stays published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

INVOKED: Final = "INVOKED"
RECORDING: Final = "RECORDING"
PAUSED: Final = "PAUSED"
UPLOADING: Final = "UPLOADING"
UPLOADED: Final = "UPLOADED"
ERRORED: Final = "ERRORED"

RecordingStatus = Literal["INVOKED", "RECORDING", "PAUSED", "UPLOADING", "UPLOADED", "ERRORED"]

# The canonical order, as documented for consumers; PAUSED sits beside RECORDING.
STATUSES: Final = (INVOKED, RECORDING, PAUSED, UPLOADING, UPLOADED, ERRORED)
# A recording in one of these is running (or about to): a second one must not be started.
ACTIVE: Final = frozenset({INVOKED, RECORDING, PAUSED})
TERMINAL: Final = frozenset({UPLOADED, ERRORED})

_RANK: Final = {INVOKED: 0, RECORDING: 1, PAUSED: 1, UPLOADING: 2, UPLOADED: 3, ERRORED: 4}

DUPLICATE: Final = "duplicate"
REGRESSION: Final = "regression"
AFTER_TERMINAL: Final = "terminal"
UNKNOWN_STATUS: Final = "unknown_status"
# Every reason a status is not published, as counted in `router_recording_updates_dropped_total`.
DROP_REASONS: Final = (DUPLICATE, REGRESSION, AFTER_TERMINAL, UNKNOWN_STATUS)


@dataclass(frozen=True)
class Verdict:
    """Whether a status is published, and if not, why (one of `DROP_REASONS`)."""

    publish: bool
    reason: str | None = None


PUBLISH: Final = Verdict(publish=True)


def judge(current: str | None, new: str) -> Verdict:
    """Judge status `new` for a recording whose last published status is `current` (None when
    nothing was published for it yet)."""
    if new not in _RANK:
        return Verdict(publish=False, reason=UNKNOWN_STATUS)
    if current is None or current not in _RANK:
        # Nothing known (or nothing we could have published): any real status is news.
        return PUBLISH
    if new == current:
        return Verdict(publish=False, reason=DUPLICATE)
    if current in TERMINAL:
        return Verdict(publish=False, reason=AFTER_TERMINAL)
    if new == ERRORED or _RANK[new] >= _RANK[current]:
        # Equal ranks with different statuses can only be RECORDING <-> PAUSED.
        return PUBLISH
    return Verdict(publish=False, reason=REGRESSION)


def is_active(status: str | None) -> bool:
    """True while a recording with this status is (or is about to be) running."""
    return status in ACTIVE
