"""The embedded broker lives exactly as long as the process that started it: a `router broker`
or `router serve` killed with SIGKILL (no chance to clean up) takes its broker with it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router.broker import free_port
from tests.plugins.process import write_config


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(n) for n in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal")
@pytest.mark.parametrize("command", ["broker", "serve", "serve --workers 2"])
def test_a_killed_parent_takes_its_broker_with_it(command: str, tmp_path: Path) -> None:
    """And `router serve --workers N` its worker processes too."""
    if command == "broker":
        port = free_port()
        args = ["broker", "--port", str(port)]
    else:
        config, _ = write_config(tmp_path)
        port = int(json.loads(config.read_text())["kafka"]["embedded_port"])
        args = [*command.split(), "--config", str(config)]
    parent = subprocess.Popen(
        [sys.executable, "-m", "router.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    brokers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert parent.poll() is None, f"router {command} exited with {parent.returncode}"
            assert time.monotonic() < deadline, "the broker never listened"
            time.sleep(0.1)
        if "--workers" in command:  # (the worker processes start after the broker)
            while len([pid for pid in _children(parent.pid) if _alive(pid)]) < 3:
                assert time.monotonic() < deadline, "the workers never started"
                time.sleep(0.1)
        brokers = [pid for pid in _children(parent.pid) if _alive(pid)]
        assert brokers, "no broker process under the router"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in brokers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in brokers), "a child outlived its killed parent"
        assert not _listening(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in brokers:  # (only when the test failed: never leave one behind)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
