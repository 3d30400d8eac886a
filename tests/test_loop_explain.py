"""`router explain` as an operator runs it: the example policy against every sample event in
tests/data, in a fresh process, exits 0 and says what it decided."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EVENTS = sorted(DATA.glob("*.json"))


def test_there_are_sample_events() -> None:
    assert len(EVENTS) >= 4


@pytest.mark.parametrize("event", EVENTS, ids=[e.stem for e in EVENTS])
def test_explain_every_sample_event(event: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "explain", "--config", "policy.yaml", event.name],
        cwd=DATA,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("decision: ") for line in lines), result.stdout
