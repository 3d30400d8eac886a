"""The processes a run starts (emulator, routers with their embedded brokers, the bare server),
and the guarantee that each is stopped at the end, whatever ends the run.

Each child gets its own session, so that a Ctrl-C at the terminal reaches only the benchmark,
which then stops its children in order: SIGTERM (the router drains, flushes and stops its
broker), and SIGKILL for the child and anything it started if it has not exited in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.machine import children_of

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Child:
    """One started process and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    descendants: set[int] = field(default_factory=set)
    stop_signal: int = signal.SIGTERM  # what asks it to stop cleanly

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def note_descendants(self) -> None:
        """Remember the child's children (and theirs), to kill them too if it must be killed."""
        pending = [self.pid]
        while pending:
            for pid in children_of(pending.pop()):
                if pid not in self.descendants:
                    self.descendants.add(pid)
                    pending.append(pid)


class Processes:
    """Starts children and stops all of them (newest first) in `stop_all`."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._children: list[Child] = []

    def start(self, name: str, args: list[str], stop_signal: int = signal.SIGTERM) -> Child:
        """Run `args` with its output in `<workdir>/<name>.log`."""
        log = self._workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if k != "ROUTER_CONFIG"}
        # The router of this checkout, unless PYTHONPATH names another one first.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
        with log.open("wb") as out:
            process = subprocess.Popen(
                args,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        child = Child(name, process, log, stop_signal=stop_signal)
        self._children.append(child)
        return child

    def router(self, name: str, config: Path, workers: int = 1, role: str = "all") -> Child:
        """`router serve --config ... --workers N --role R`."""
        args = [sys.executable, "-m", "router.cli", "serve", "--config", str(config)]
        return self.start(name, [*args, "--workers", str(workers), "--role", role])

    def broker(self, name: str, port: int) -> Child:
        """`router broker --port N`: the embedded broker alone. It stops its broker on SIGINT
        (on SIGTERM it would exit and leave the broker running), so SIGINT is what stops it."""
        args = [sys.executable, "-m", "router.cli", "broker", "--port", str(port)]
        return self.start(name, args, stop_signal=signal.SIGINT)

    async def stop(self, child: Child, timeout: float = 20.0) -> None:
        """Its stop signal (SIGTERM unless set), wait, then SIGKILL the child and its
        descendants."""
        if child in self._children:
            self._children.remove(child)
        if child.running:
            child.note_descendants()
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(child.stop_signal)
            deadline = asyncio.get_running_loop().time() + timeout
            while child.running and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
        kill_all(child)

    async def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        for child in reversed(list(self._children)):
            await self.stop(child)

    def kill_remaining(self) -> None:
        """Last resort without an event loop: SIGKILL whatever is left."""
        for child in self._children:
            kill_all(child)
        self._children.clear()


def kill_all(child: Child) -> None:
    """SIGKILL a child that is still alive, and then the descendants noted for it (which a
    killed router cannot stop itself); a child that exited on its own stopped its own."""
    if not child.running:
        return
    child.note_descendants()
    with contextlib.suppress(ProcessLookupError):
        child.process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.process.wait(timeout=5)
    for pid in child.descendants:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


async def wait_http(
    http: aiohttp.ClientSession, url: str, child: Child, timeout: float = 60.0
) -> None:
    """Poll `url` until it answers 200; fail with the child's log if it exits or never does."""

    async def answers() -> bool:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        return False

    await _wait_for(answers, child, timeout, "not ready", interval=0.2)


async def wait_port(port: int, child: Child, timeout: float = 30.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`; fail with the
    child's log if it exits or never does."""

    async def listens() -> bool:
        with contextlib.suppress(OSError, TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    await _wait_for(listens, child, timeout, "not listening", interval=0.1)


async def _wait_for(
    check: Callable[[], Awaitable[bool]], child: Child, timeout: float, what: str, interval: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if not child.running:
            raise RuntimeError(
                f"{child.name} exited ({child.process.returncode}):\n{child.log_tail()}"
            )
        if await check():
            child.note_descendants()
            return
        if loop.time() > deadline:
            raise RuntimeError(f"{child.name} {what} in {timeout} s:\n{child.log_tail()}")
        await asyncio.sleep(interval)
