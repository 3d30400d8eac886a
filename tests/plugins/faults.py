"""Fixtures and helpers for the fault, fuzz and security tests: raw HTTP over plain sockets (for
requests no well-behaved client would send), a `router serve` process with its own embedded
broker to aim hostile traffic at, and its resident memory read from /proc.

An answer is read to the end of its `Content-Length`, or until the server closes the
connection (garbage is answered, or dropped, by aiohttp's parser and the connection closed).
A read that times out is reported as such, never taken for an answer."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from router.broker import free_port
from router.clock import wall_seconds
from router.core.signature import (
    HMAC_HEADER,
    RSA_HEADER,
    generate_key_pair,
    hmac_sign,
    load_private_key,
    rsa_sign,
)
from tests.plugins.process import RouterProcess, http_json, wait_until_ready

RTK_PATH = "/webhooks/realtimekit"
INTERNAL_PATH = "/webhooks/internal"
HOSTILE_HMAC_SECRET = "hostile-hmac-secret-3f9a0c"
HOSTILE_MAX_BODY = 262_144
_STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")

HeaderList = Sequence[tuple[str | bytes, str | bytes]]


@dataclass(frozen=True)
class RawAnswer:
    """The final answer on one connection: its status (None: none came) and bytes, and
    whether the read timed out with the connection still open."""

    status: int | None
    data: bytes
    timed_out: bool

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def request_bytes(
    method: str | bytes,
    path: str | bytes,
    headers: HeaderList = (),
    body: bytes = b"",
    *,
    content_length: int | None = None,
    version: bytes = b"HTTP/1.1",
    close: bool = True,
) -> bytes:
    """One HTTP/1.1 request as bytes; `Content-Length` is the body's unless given (-1: none)."""
    lines = [_bytes(method) + b" " + _bytes(path) + b" " + version, b"Host: 127.0.0.1"]
    if content_length != -1:
        lines.append(
            b"Content-Length: %d" % (len(body) if content_length is None else content_length)
        )
    if close:
        lines.append(b"Connection: close")
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(
    port: int,
    data: bytes,
    *,
    timeout: float = 15.0,
    half_close: bool = False,
    stall: float = 0.0,
) -> RawAnswer:
    """Send `data` on a fresh connection and read until the server closes it.

    `half_close` shuts our side for writing after sending (a body cut short by its sender);
    `stall` waits that long after sending before reading (a sender that stops mid-request)."""
    received = bytearray()
    timed_out = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            if stall:
                time.sleep(stall)
            while not _complete(received) and (chunk := sock.recv(65536)):
                received += chunk
        except TimeoutError:
            timed_out = True
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server gave up on the request: a closed connection, not a hang
    return RawAnswer(*_final_response(bytes(received)), timed_out)


def _complete(data: bytearray) -> bool:
    """Whether a whole final answer with a `Content-Length` is in: aiohttp may keep the
    connection open a while after answering (to drain a body it refused), so reading until
    it closes would only measure that."""
    status, final = _final_response(bytes(data))
    head, separator, body = final.partition(b"\r\n\r\n")
    if status is None or not separator:
        return False
    length = _CONTENT_LENGTH.search(head)
    return length is not None and len(body) >= int(length.group(1))


def _final_response(data: bytes) -> tuple[int | None, bytes]:
    """The status and bytes of the final answer, past any interim `100 Continue`."""
    while match := _STATUS_LINE.match(data):
        status = int(match.group(1))
        if status >= 200:
            return status, data
        data = data.partition(b"\r\n\r\n")[2]
    return None, data


def rss_bytes(pid: int) -> int:
    """The resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@dataclass
class HostileRouter:
    """A `router serve` process that trusts `private_key` (RSA source) and `hmac_secret`."""

    process: RouterProcess
    port: int
    private_key: rsa.RSAPrivateKey
    hmac_secret: str = HOSTILE_HMAC_SECRET

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.process.pid

    @property
    def alive(self) -> bool:
        return self.process.process.poll() is None

    def healthz(self) -> int:
        return http_json(self.url + "/healthz", timeout=10)[0]

    def rtk_signed(self, body: bytes) -> list[tuple[str, str]]:
        """Headers of a delivery RTK signed."""
        return [(RSA_HEADER, rsa_sign(self.private_key, body))]

    def hmac_signed(self, body: bytes, *, age: int = 0) -> list[tuple[str, str]]:
        """Headers of a delivery to the `internal` source, signed `age` seconds ago."""
        stamp = int(wall_seconds()) - age
        return [(HMAC_HEADER, hmac_sign(self.hmac_secret, body, timestamp=stamp))]

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (a line still being written is left out)."""
        lines = []
        for text in self.process.output.splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def problems(self) -> list[dict[str, Any]]:
        """Log lines at error level or worse: each one is a bug, or an alarm nobody needs."""
        return [line for line in self.log_lines() if line.get("level") in ("error", "critical")]


def hostile_config(directory: Path, public_pem: bytes) -> tuple[Path, int]:
    """A config on free ports: an RTK source with a pinned key, an HMAC source, an embedded
    broker and no API token (shadow mode: this router is here to be attacked, not to record)."""
    key_file = directory / "rtk-public.pem"
    key_file.write_bytes(public_pem)
    port = free_port()
    config = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "max_body_bytes": HOSTILE_MAX_BODY,
            "shutdown_grace_seconds": 3,
        },
        "sources": [
            {
                "name": "realtimekit",
                "path": RTK_PATH,
                "signature": {"scheme": "rtk-rsa", "public_key_file": str(key_file)},
            },
            {
                "name": "internal",
                "path": INTERNAL_PATH,
                "signature": {"scheme": "hmac", "secrets": ["${ROUTER_HMAC_SECRET}"]},
            },
        ],
        "kafka": {
            "bootstrap_servers": "embedded",
            "embedded_port": free_port(),
            "session_timeout_seconds": 2,
            "partitions": 3,
        },
    }
    path = directory / "config.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path, port


@pytest.fixture(scope="module")
def hostile_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRouter]:
    """One router process for a module's hostile requests; stopped (SIGTERM) afterwards."""
    directory = tmp_path_factory.mktemp("hostile")
    private_pem, public_pem = generate_key_pair()
    path, port = hostile_config(directory, public_pem)
    process = RouterProcess(
        ["serve", "--config", str(path)],
        directory,
        env={"ROUTER_HMAC_SECRET": HOSTILE_HMAC_SECRET},
    )
    try:
        router = HostileRouter(process, port, load_private_key(private_pem))
        wait_until_ready(router.url, process)
        yield router
    finally:
        process.stop()
