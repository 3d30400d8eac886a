"""`router console` as a command (SPEC 9.3): its configuration keys, its refusals in one line
(exit 2 without credentials, exit 1 without its topics), and the real process serving behind
Basic authentication until SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from router.broker import EmbeddedBroker, free_port
from router.config import parse_config
from router.console.app import create_console_app
from router.errors import ConfigError
from tests.plugins.console import create_topics
from tests.plugins.e2e import REPO
from tests.test_cli import cli
from tests.test_config import MINIMAL


def _clean_env() -> dict[str, str]:
    hidden = ("ROUTER_CONFIG", "ROUTER_CONSOLE_USERNAME", "ROUTER_CONSOLE_PASSWORD")
    return {k: v for k, v in os.environ.items() if k not in hidden}


@pytest.mark.parametrize(
    ("console", "expected"),
    [
        (
            "console:\n  username: ops\n",
            "config.yaml:6: console: set both username and password, or neither",
        ),
        (
            "console:\n  password: ${P}\n",
            "config.yaml:6: console: set both username and password, or neither",
        ),
        ("console:\n  pasword: x\n", "config.yaml:7: console.pasword: unknown key"),
        (
            "console:\n  username: 'a:b'\n  password: ${P}\n",
            "config.yaml:6: console: username must not contain ':' (HTTP Basic separates with it)",
        ),
        (
            "console:\n  max_meetings: 0\n",
            "config.yaml:7: console.max_meetings: Input should be greater than 0",
        ),
    ],
    ids=["user-alone", "password-alone", "typo", "colon", "zero-meetings"],
)
def test_console_keys_are_checked_with_their_line(console: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(MINIMAL + console), "config.yaml", {"P": "secret"})
    assert caught.value.problems == [expected]


def test_a_literal_console_password_is_warned_about() -> None:
    literal = MINIMAL + "console:\n  username: ops\n  password: hunter2\n"
    (warning,) = parse_config(literal, "c.yaml", {}).warnings
    assert warning.startswith("c.yaml:8: console.password: a literal secret")
    assert "hunter2" not in warning
    from_env = MINIMAL + "console:\n  username: ${U}\n  password: ${P}\n"
    loaded = parse_config(from_env, "c.yaml", {"U": "ops", "P": "hunter2"})
    assert loaded.warnings == ()
    assert loaded.settings.console.has_credentials
    assert "hunter2" not in repr(loaded.settings)


def test_the_app_is_never_made_with_empty_credentials() -> None:
    settings = parse_config(MINIMAL, "c.yaml", {}).settings
    with pytest.raises(ValueError, match="are not set"):
        create_console_app(settings)


def test_console_has_help(tmp_path: Path) -> None:
    result = cli("console", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--no-auth" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [],
            "router: console.username and console.password are not set; give them (as ${VAR}), "
            "or use --no-auth with a loopback --host",
        ),
        (
            ["--no-auth", "--host", "0.0.0.0"],
            "router: --no-auth serves the topics to anyone who can reach 0.0.0.0; it is "
            "allowed only with a loopback --host (127.0.0.1, ::1, localhost)",
        ),
    ],
    ids=["no-credentials", "no-auth-on-all-interfaces"],
)
def test_the_console_refuses_to_start_unprotected(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL)
    result = cli("console", "--config", str(config), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]


async def test_the_console_serves_behind_its_login_until_sigterm(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topics(broker)
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        MINIMAL
        + f"kafka:\n  bootstrap_servers: {broker.bootstrap_servers}\n"
        + "console:\n  username: ${ROUTER_CONSOLE_USERNAME}\n"
        + "  password: ${ROUTER_CONSOLE_PASSWORD}\n"
    )
    env = {
        **_clean_env(),
        "ROUTER_CONSOLE_USERNAME": "ops",
        "ROUTER_CONSOLE_PASSWORD": "s3cret-console",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router.cli",
            "console",
            "--config",
            str(config),
            "--port",
            f"{port}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/meetings"
        status = await _wait_for_answer(url, {}, process)
        assert status == 401
        token = base64.b64encode(b"ops:s3cret-console").decode()
        status = await _wait_for_answer(url, {"Authorization": f"Basic {token}"}, process)
        assert status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "s3cret-console" not in output
        assert "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_missing_topic_is_one_line(broker: EmbeddedBroker, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL + f"kafka:\n  bootstrap_servers: {broker.bootstrap_servers}\n")
    result = cli("console", "--config", str(config), "--no-auth", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("router: ")]
    assert problems == [
        "router: topic 'rtk.meetings', 'rtk.decisions', 'rtk.recordings', 'rtk.dead-letter' "
        "does not exist on the broker"
    ], result.stderr


async def test_a_taken_port_is_one_line(broker: EmbeddedBroker, tmp_path: Path) -> None:
    await create_topics(broker)
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL + f"kafka:\n  bootstrap_servers: {broker.bootstrap_servers}\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        args = ("console", "--config", str(config), "--no-auth", "--port", port)
        result = await asyncio.to_thread(cli, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # (a taken port is a usage error)
    assert "Traceback" not in result.stderr, result.stderr
    [problem] = [line for line in result.stderr.splitlines() if line.startswith("router: ")]
    assert "address already in use" in problem


async def _wait_for_answer(
    url: str, headers: dict[str, str], process: subprocess.Popen[str], timeout: float = 30.0
) -> int:
    """The status of a GET once the console listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            request = urllib.request.Request(url, headers=headers)
            with await asyncio.to_thread(urllib.request.urlopen, request, timeout=2) as answer:
                json.load(answer)
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, ConnectionError):
            assert loop.time() < deadline, "the console never listened"
            await asyncio.sleep(0.2)
