"""`--app NAME` on the commands that read a policy or the topics: `router explain` judges with
that app's policy, and a configuration of several apps needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOIN = REPO / "tests" / "data" / "participant_joined.json"


def router(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_explain_judges_with_the_named_apps_policy() -> None:
    staging = router("explain", "--config", "examples/apps.yaml", "--app", "staging", str(JOIN))
    assert staging.returncode == 0, staging.stderr
    assert "(shadow)" in staging.stdout.splitlines()[0]
    assert "record-everything" in staging.stdout
    prod = router(
        "explain",
        "--config",
        "examples/apps.yaml",
        "--app",
        "prod",
        "--participants",
        "2",
        str(JOIN),
    )
    assert prod.returncode == 0, prod.stderr
    assert "board-meetings" in prod.stdout
    assert "record-everything" not in prod.stdout


def test_app_is_needed_with_several_apps_and_must_exist() -> None:
    for args, said in (
        ((), "router: the configuration has several apps: give --app (prod, staging)"),
        (("--app", "qa"), "router: no app 'qa' in the configuration (prod, staging)"),
    ):
        result = router("explain", "--config", "examples/apps.yaml", *args, str(JOIN))
        assert result.returncode == 2
        assert result.stderr.strip() == said


def test_app_is_refused_without_apps() -> None:
    for command in (["explain", str(JOIN)], ["why", "m-1"]):
        result = router(*command, "--config", "config.yaml", "--app", "prod")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "router: --app is for a configuration with apps; this one has none"
        )
