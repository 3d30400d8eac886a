"""Routers as real processes (`python -m router.cli serve ...`), for what only a process shows:
signals, logs on stdout, the CLI. Each is stopped (SIGTERM, then SIGKILL) after the test."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from router.broker import free_port


@dataclass(frozen=True)
class Ran:
    """A `router` command that ran to its end: exit code and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run_router(*args: str, cwd: Path, timeout: float = 60) -> Ran:
    """Run `router ARGS...` as a process of its own in `cwd`, without blocking the loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


class RouterProcess:
    """One `router` command running in the background with its output in a file."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        *,
        open_files: int | None = None,
    ) -> None:
        """`open_files`: the process's descriptor limit (soft and hard), else the test's."""
        self.log_path = cwd / f"router-{len(list(cwd.glob('router-*.log')))}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "router.cli", *args],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=None if open_files is None else _limit_files(open_files),  # noqa: PLW1509
        )

    @property
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines printed so far (stdout is not a terminal, so all are JSON)."""
        return [json.loads(line) for line in self.output.splitlines() if line.startswith("{")]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _limit_files(count: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return limit


def http_json(url: str, timeout: float = 5) -> tuple[int, Any]:
    """GET a JSON document; (status, body), with (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError:
        return 0, None


def wait_until_ready(base_url: str, process: RouterProcess, within: float = 60) -> dict[str, Any]:
    """Poll /readyz until it answers ready; fail with the router's output otherwise."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            pytest.fail(f"router exited with {process.process.returncode}:\n{process.output}")
        status, body = http_json(base_url + "/readyz")
        if status == 200:
            return dict(body)
        time.sleep(0.2)
    pytest.fail(f"router not ready in {within} s:\n{process.output}")


def write_config(directory: Path, **sections: Any) -> tuple[Path, int]:
    """A config file for a process on free ports with its own embedded broker."""
    port = free_port()
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_grace_seconds": 5},
        "sources": [
            {
                "name": "realtimekit",
                "path": "/webhooks/realtimekit",
                "signature": {"scheme": "rtk-rsa", "public_key_url": "http://127.0.0.1:1/none"},
            }
        ],
        "kafka": {
            "bootstrap_servers": "embedded",
            "embedded_port": free_port(),
            "session_timeout_seconds": 2,
            "partitions": 3,
        },
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    path = directory / "config.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path, port


@pytest.fixture
def router_processes() -> Iterator[list[RouterProcess]]:
    """Start routers by appending to this list; all are stopped after the test."""
    started: list[RouterProcess] = []
    yield started
    for process in started:
        process.stop()
