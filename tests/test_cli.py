"""The command line as an operator uses it: serve with --dev, send, tail, keygen, --help,
graceful shutdown, one structured log line per request, and SIGHUP reloads of the policy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugins.process import RouterProcess, http_json, wait_until_ready, write_config


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    ["serve", "check-config", "explain", "send", "tail", "why", "keygen", "broker", "emulate"],
)
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: router" in result.stdout


def test_keygen_writes_a_usable_pair(tmp_path: Path) -> None:
    result = cli("keygen", "keys", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    private = tmp_path / "keys" / "private.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "keys" / "public.pem").read_bytes()
    again = cli("keygen", "keys", cwd=tmp_path)
    assert again.returncode == 1  # never overwrites a key


def test_dev_serve_send_tail_and_graceful_stop(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    config, port = write_config(tmp_path)
    router = RouterProcess(["serve", "--dev", "--config", str(config)], cwd=tmp_path)
    router_processes.append(router)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(base, router)
    assert "DEV MODE" in router.output

    url = base + "/webhooks/realtimekit"
    sent = cli("send", "meeting.participantJoined", "--url", url, cwd=tmp_path)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    status, body = sent.stdout.splitlines()[:2]
    assert status == "200"
    accepted = json.loads(body)
    assert accepted["status"] == "accepted"

    tail = cli(
        "tail",
        "rtk.webhooks",
        "--config",
        str(config),
        "--from-beginning",
        "--limit",
        "1",
        cwd=tmp_path,
    )
    assert tail.returncode == 0, tail.stderr
    (line,) = tail.stdout.splitlines()
    message = json.loads(line)
    assert message["topic"] == "rtk.webhooks"
    assert message["headers"]["rtk-uuid"] == accepted["id"]
    assert message["value"]["event"] == "meeting.participantJoined"
    assert message["key"] == message["value"]["meeting"]["id"]

    # One structured line per request, with what an operator needs and no signature.
    (request,) = [line for line in router.log_lines() if line["message"] == "webhook"]
    assert request["source"] == "realtimekit"
    assert request["event"] == "meeting.participantJoined"
    assert request["delivery_id"] == accepted["id"]
    assert request["status"] == 200
    assert request["latency_ms"] >= 0
    signature = message["headers"]["rtk-signature"]
    assert signature not in router.output

    router.signal(signal.SIGTERM)
    assert router.wait(timeout=30) == 0
    messages = [line["message"] for line in router.log_lines()]
    assert "shutting down: draining requests" in messages
    assert messages[-1] == "stopped"


def test_send_refuses_what_it_cannot_sign(tmp_path: Path) -> None:
    result = cli("send", "no.such.event", "--url", "http://127.0.0.1:1/x", cwd=tmp_path)
    assert result.returncode != 0
    assert "neither a file nor an event name" in result.stderr
    (tmp_path / "bad.pem").write_text("not a key")
    result = cli(
        "send",
        "meeting.started",
        "--url",
        "http://127.0.0.1:1/x",
        "--key",
        "bad.pem",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "cannot use bad.pem as an RSA private key" in result.stderr


RULE = {
    "name": "two-or-more",
    "on": "meeting.participantJoined",
    "when": {"session.participants": {"gte": 2}},
    "action": "start_recording",
}


def test_sighup_reloads_the_policy_and_keeps_the_last_good_one(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    config, port = write_config(tmp_path, policy={"mode": "enforce", "rules": []})
    router = RouterProcess(["serve", "--dev", "--config", str(config)], cwd=tmp_path)
    router_processes.append(router)
    base = f"http://127.0.0.1:{port}"
    first = wait_until_ready(base, router)["policy_version"]

    document = json.loads(config.read_text())
    document["policy"]["rules"] = [RULE]
    config.write_text(json.dumps(document))
    router.signal(signal.SIGHUP)
    second = _policy_version_changes(base, first)
    assert second != first
    metrics = urllib_text(base + "/metrics")
    assert f'router_policy_info{{mode="shadow",policy_version="{second}"}} 1.0' in metrics

    config.write_text(config.read_text().replace('"gte"', '"greater_or_so"'))
    router.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("reload refused" in line["message"] for line in router.log_lines()):
        assert time.monotonic() < deadline, router.output
        time.sleep(0.1)
    refused = next(line for line in router.log_lines() if "reload refused" in line["message"])
    assert any("unknown operator 'greater_or_so'" in p for p in refused["problems"])
    assert http_json(base + "/readyz")[1]["policy_version"] == second
    assert router.process.poll() is None


def _policy_version_changes(base: str, old: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        version = http_json(base + "/readyz")[1]["policy_version"]
        if version != old:
            return str(version)
        time.sleep(0.1)
    pytest.fail("the policy version did not change after SIGHUP")


def urllib_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_workers_share_the_port_and_stop_together(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    import os

    config, port = write_config(tmp_path)
    router = RouterProcess(["serve", "--dev", "--workers", "2", "--config", str(config)], tmp_path)
    router_processes.append(router)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(base, router)
    url = base + "/webhooks/realtimekit"
    for _ in range(10):
        sent = cli("send", "meeting.participantJoined", "--url", url, cwd=tmp_path)
        assert sent.stdout.startswith("200"), sent.stdout + sent.stderr
    lines = router.log_lines()
    (supervisor,) = [line for line in lines if line["message"] == "started worker processes"]
    pids = supervisor["pids"]
    assert len(pids) == 2
    listening = [line for line in lines if line["message"] == "listening"]
    assert len(listening) == 2
    router.signal(signal.SIGTERM)
    assert router.wait(timeout=60) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_router_broker_stops_its_broker_when_stopped(signum: int, tmp_path: Path) -> None:
    """The broker process runs in a session of its own: `router broker` must stop it,
    whichever signal stops `router broker` itself."""
    from router.broker import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "broker", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]  # (a warning, then this)
        assert "broker listening" in lines[-1], lines
        assert _listening(port)
        process.send_signal(signum)
        assert process.wait(timeout=15) == 0
        deadline = time.monotonic() + 10
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port), "the broker outlived `router broker`"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_refuses_an_embedded_broker_port_already_taken(tmp_path: Path) -> None:
    """Another process listens where the embedded broker should: `router serve` must not
    take it for its broker (and join another router's group); one line, exit 1."""
    import socket

    config, _ = write_config(tmp_path)
    port = json.loads(config.read_text())["kafka"]["embedded_port"]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = cli("serve", "--config", str(config), cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    problem = [line for line in result.stderr.splitlines() if line.startswith("router: ")]
    assert problem == [
        f"router: port {port} is already in use: set kafka.embedded_port to a free port, "
        "or kafka.bootstrap_servers to the broker listening there"
    ], result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_busy_http_port_says_so_in_one_line(tmp_path: Path) -> None:
    import socket

    config, http_port = write_config(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", http_port))
        holder.listen()
        result = cli("serve", "--config", str(config), cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [problem] = [line for line in result.stderr.splitlines() if line.startswith("router: ")]
    assert "address already in use" in problem
    assert str(http_port) in problem


def test_send_to_a_closed_port_and_tail_of_a_missing_topic_say_so_in_one_line(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    from router.broker import free_port

    closed = f"http://127.0.0.1:{free_port()}/webhooks/realtimekit"
    sent = cli("send", "meeting.participantJoined", "--url", closed, cwd=tmp_path)
    assert sent.returncode == 1
    assert "Traceback" not in sent.stderr, sent.stderr
    [problem] = sent.stderr.strip().splitlines()
    assert problem.startswith(f"router: cannot deliver to {closed}: "), problem

    config, port = write_config(tmp_path)
    router = RouterProcess(["serve", "--dev", "--config", str(config)], cwd=tmp_path)
    router_processes.append(router)
    wait_until_ready(f"http://127.0.0.1:{port}", router)
    tail = cli("tail", "no.such.topic", "--config", str(config), "--idle-exit", "2", cwd=tmp_path)
    assert tail.returncode == 1
    assert "Traceback" not in tail.stderr, tail.stderr
    assert [line for line in tail.stderr.splitlines() if line.startswith("router: ")] == [
        "router: topic 'no.such.topic' does not exist on the broker"
    ], tail.stderr
