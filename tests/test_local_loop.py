"""The README's local loop, run as written: its commands are read from the section "The local
loop" (so the walkthrough cannot drift from what works), the example files it names are the
shipped ones, and every process is real. Only the ports change, to free ones."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.broker import free_port
from tests.plugins.process import RouterProcess

ROOT = Path(__file__).resolve().parent.parent
PORTS = ("8787", "8080", "9092")  # the emulator, the router, the embedded broker


def section(markdown: str, title: str) -> str:
    start = markdown.index(f"### {title}\n")
    end = markdown.find("\n#", start + 1)
    return markdown[start : end if end != -1 else None]


def walkthrough() -> tuple[list[str], list[str]]:
    """The commands of the section's console blocks, in order, and the inline `curl` ones."""
    text = section((ROOT / "README.md").read_text(), "The local loop")
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL)
    commands = [
        line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")
    ]
    inline = [c for c in re.findall(r"`(curl [^`]+)`", text) if c not in commands]
    return commands, inline


def test_the_walkthrough_names_shipped_files() -> None:
    commands, inline = walkthrough()
    assert [c.split()[:2] for c in commands[:3]] == [
        ["router", "emulate"],
        ["router", "serve"],
        ["router", "tail"],
    ]
    named = {Path(w.lstrip("@")) for c in commands + inline for w in c.split() if "examples/" in w}
    assert named == {
        Path("examples/seed.yaml"),
        Path("examples/local.yaml"),
        Path("examples/meeting.json"),
    }
    for path in named:
        assert (ROOT / path).is_file(), path


def decisions(tail: RouterProcess) -> list[dict[str, Any]]:
    lines = [line for line in tail.output.splitlines() if line.startswith("{")]
    return [json.loads(line)["value"] for line in lines]


def wait_for(what: str, check: Callable[[], bool], processes: list[RouterProcess]) -> None:
    deadline = time.monotonic() + 60
    while not check():
        for process in processes:
            if process.process.poll() is not None:
                pytest.fail(f"exited with {process.process.returncode}:\n{process.output}")
        if time.monotonic() > deadline:
            outputs = "\n---\n".join(p.output[-3000:] for p in processes)
            pytest.fail(f"no {what} within 60 s:\n{outputs}")
        time.sleep(0.2)


def outcomes(tail: RouterProcess, meeting: str) -> list[tuple[str | None, str]]:
    return [
        ((d.get("participant") or {}).get("custom_participant_id"), d["outcome"])
        for d in decisions(tail)
        if d.get("meeting_id") == meeting
    ]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_the_readme_local_loop_works_as_written(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    commands, inline = walkthrough()
    ports = {old: str(free_port()) for old in PORTS}

    def localised(text: str) -> str:
        for old, new in ports.items():
            text = text.replace(old, new)
        return text

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for path in (tmp_path / "examples").iterdir():
        path.write_text(localised(path.read_text()))

    def run(command: str) -> RouterProcess | subprocess.CompletedProcess[str]:
        words = shlex.split(localised(command))
        if words[0] == "router":
            process = RouterProcess(words[1:], tmp_path)
            router_processes.append(process)
            return process
        assert words[0] == "curl", command
        return subprocess.run(
            [*words, "--silent", "--show-error", "--max-time", "10"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )

    emulator, router, tail, play = commands
    processes: list[RouterProcess] = []
    # Each once the one before is up, as the README says.
    for command, up in (
        (emulator, "RTK emulator listening"),
        (router, '"listening"'),
        (tail, None),
    ):
        process = run(command)
        assert isinstance(process, RouterProcess)
        processes.append(process)
        if up is not None:
            wait_for(f"{command.split()[1]} up", lambda p=process, u=up: u in p.output, processes)
    tailing = processes[2]
    # The emulator plays the seed's meeting once the router answers.
    wait_for(
        "decisions for board-room",
        lambda: len(outcomes(tailing, "board-room")) >= 2,
        processes,
    )
    assert outcomes(tailing, "board-room") == [("bob", "started"), ("ann", "already_recording")]

    played = run(play)
    assert isinstance(played, subprocess.CompletedProcess)
    assert json.loads(played.stdout) == {"meeting_id": "design-review"}
    wait_for(
        "decisions for design-review",
        lambda: len(outcomes(tailing, "design-review")) >= 2,
        processes,
    )
    assert outcomes(tailing, "design-review") == [("dan", "no_match"), ("carol", "started")]

    [calls_command] = [c for c in inline if c.endswith("/_emulator/calls")]
    calls = run(calls_command)
    assert isinstance(calls, subprocess.CompletedProcess)
    starts = [c["meeting_id"] for c in json.loads(calls.stdout) if c["call"] == "start_recording"]
    assert sorted(starts) == ["board-room", "design-review"]

    for process in reversed(processes):  # Ctrl-C in each terminal: each stops cleanly
        process.signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, process.output[-3000:]
