"""Every expected failure of every command: one line on stderr and a documented exit code
(2: usage and configuration, 1: at run time), never a traceback; and every option's `--help`
says what it does and its default."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from router.broker import EmbeddedBroker, free_port
from router.cli import build_parser
from tests.plugins.process import write_config


@dataclass(frozen=True)
class Case:
    name: str
    args: Callable[[Path], list[str]]
    code: int
    says: str  # a piece of the one line
    hold_port: Callable[[Path], int] | None = None  # a port another process listens on


def _config(directory: Path, **kafka: object) -> str:
    path, _ = write_config(directory, kafka=kafka) if kafka else write_config(directory)
    return str(path)


def _embedded_port(directory: Path) -> int:
    return int(json.loads((directory / "config.yaml").read_text())["kafka"]["embedded_port"])


def _http_port(directory: Path) -> int:
    return int(json.loads((directory / "config.yaml").read_text())["server"]["port"])


def _bad_config(directory: Path) -> str:
    path = directory / "bad.yaml"
    path.write_text(
        "sources:\n  - name: realtimekit\n    path: /webhooks/realtimekit\n"
        "    signature: {scheme: rtk-rsa}\nkafka: {bootstrap: x}\n"
    )
    return str(path)


def _garbage_key(directory: Path) -> str:
    path = directory / "garbage.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    return str(path)


def _existing_key(directory: Path) -> str:
    (directory / "keys").mkdir()
    (directory / "keys" / "private.pem").write_text("x")
    return str(directory / "keys")


def _closed_url(directory: Path) -> str:
    return f"http://127.0.0.1:{free_port()}/webhooks/realtimekit"


PORT_FILE = "port"


def _port(directory: Path) -> int:
    """A free port, remembered for the case's arguments and the holder."""
    path = directory / PORT_FILE
    if not path.exists():
        path.write_text(str(free_port()))
    return int(path.read_text())


CASES = [
    Case("unknown command", lambda d: ["frobnicate"], 2, "invalid choice"),
    Case("bad option value", lambda d: ["serve", "--workers", "many"], 2, "--workers"),
    Case("missing option", lambda d: ["send", "meeting.started"], 2, "--url"),
    Case(
        "serve: missing config",
        lambda d: ["serve", "--config", str(d / "none.yaml")],
        2,
        "none.yaml:1: (file): cannot read",
    ),
    Case("serve: bad config", lambda d: ["serve", "--config", _bad_config(d)], 2, "unknown key"),
    Case(
        "serve: busy HTTP port",
        lambda d: ["serve", "--config", _config(d)],
        2,
        "address already in use",
        hold_port=_http_port,
    ),
    Case(
        "serve: embedded broker port taken",
        lambda d: ["serve", "--config", _config(d)],
        2,
        "is already in use: set kafka.embedded_port",
        hold_port=_embedded_port,
    ),
    Case(
        "check-config: bad config",
        lambda d: ["check-config", "--config", _bad_config(d)],
        2,
        "unknown key",
    ),
    Case(
        "explain: unreadable event",
        lambda d: ["explain", "--config", _config(d), str(d / "none.json")],
        2,
        "none.json: No such file or directory",
    ),
    Case(
        "send: neither file nor event",
        lambda d: ["send", "nope", "--url", "http://x"],
        2,
        "neither a file",
    ),
    Case(
        "send: missing key",
        lambda d: ["send", "meeting.started", "--url", "http://x", "--key", str(d / "k.pem")],
        2,
        "cannot use",
    ),
    Case(
        "send: bad key",
        lambda d: ["send", "meeting.started", "--url", "http://x", "--key", _garbage_key(d)],
        2,
        "as an RSA private key",
    ),
    Case(
        "send: unreachable URL",
        lambda d: ["send", "meeting.started", "--url", _closed_url(d)],
        1,
        "cannot deliver to http://127.0.0.1:",
    ),
    Case(
        "tail: unreachable broker",
        lambda d: ["tail", "rtk.decisions", "--config", _config(d), "--idle-exit", "1"],
        1,
        "the Kafka broker: KafkaConnectionError",
    ),
    Case("keygen: key exists", lambda d: ["keygen", _existing_key(d)], 2, "not overwriting"),
    Case("keygen: unwritable", lambda d: ["keygen", "/proc/keys-here"], 2, "/proc/keys-here"),
    Case(
        "broker: port taken",
        lambda d: ["broker", "--port", str(_port(d))],
        2,
        "is already in use",
        hold_port=_port,
    ),
    Case(
        "emulate: missing seed",
        lambda d: ["emulate", "--port", "0", "--seed", str(d / "seed.yaml")],
        2,
        "seed.yaml",
    ),
    Case(
        "emulate: bad key",
        lambda d: ["emulate", "--port", "0", "--key", _garbage_key(d)],
        2,
        "as an RSA private key",
    ),
    Case(
        "emulate: port taken",
        lambda d: ["emulate", "--port", str(_port(d))],
        2,
        "cannot listen on 127.0.0.1:",
        hold_port=_port,
    ),
]


@contextmanager
def _held(port: int | None) -> Iterator[None]:
    if port is None:
        yield
        return
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(stderr: str) -> str:
    """The one line of a failure (warnings a command prints before it are allowed)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line and not line.startswith("warning:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_expected_failure_is_one_line_and_its_code(case: Case, tmp_path: Path) -> None:
    args = case.args(tmp_path)
    port = case.hold_port(tmp_path) if case.hold_port is not None else None
    with _held(port):
        result = run_cli(args, tmp_path)
    assert result.returncode == case.code, result.stderr
    line = one_line(result.stderr)
    assert case.says in line, line
    if not line.startswith(str(tmp_path)):  # (configuration problems are `FILE:LINE: ...`)
        assert line.startswith("router: "), line


async def test_tail_of_a_missing_topic_is_one_line(broker: EmbeddedBroker, tmp_path: Path) -> None:
    config, _ = write_config(tmp_path, kafka={"bootstrap_servers": broker.bootstrap_servers})
    args = ["tail", "no.such.topic", "--config", str(config), "--idle-exit", "1"]
    result = await asyncio.to_thread(run_cli, args, tmp_path)
    assert result.returncode == 1
    assert one_line(result.stderr) == "router: topic 'no.such.topic' does not exist on the broker"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_says_what_it_does_and_its_default(command: str) -> None:
    parser = _subcommands()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"router {command} {name}: no help"
        positional = not action.option_strings
        if positional or action.required:
            continue
        text = action.help % {"default": action.default} if "%(" in action.help else action.help
        assert "default" in text, f"router {command} {name}: the help names no default: {text}"
    rendered = parser.format_help()
    assert "usage: router " + command in rendered
