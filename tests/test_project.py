"""What the repository promises about itself: the README's commands are what CI runs, and the
Docker image runs the service as a non-root user without --dev."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [b.strip() for b in _shell_blocks(readme) if b.strip().endswith("pytest")]
    assert len(commands) == 1, commands
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands[0] in ci_lines


def test_readme_run_command_serves_the_shipped_config() -> None:
    readme = (ROOT / "README.md").read_text()
    (command,) = [b.strip() for b in _shell_blocks(readme) if "router serve" in b and "pip" in b]
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert command.endswith("router serve --dev")


def test_dockerfile_runs_as_non_root_and_never_dev() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must name a user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    (cmd,) = [line for line in lines if line.startswith("CMD ")]
    assert '"router", "serve"' in cmd
    instructions = [line for line in lines if not line.lstrip().startswith("#")]
    assert not any("--dev" in line for line in instructions)
    assert sum(line.startswith("FROM ") for line in lines) >= 2  # multi-stage
