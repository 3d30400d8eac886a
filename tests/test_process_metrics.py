"""Process and collector metrics (prometheus-client's default collectors) on `/metrics`, in the
one process of a router and in every process of `--workers N`, each on its own port."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.app import create_app
from router.broker import EmbeddedBroker, free_port
from router.config import Settings
from tests.plugins.process import RouterProcess, wait_until_ready, write_config

DEFAULT_COLLECTED = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    'python_gc_collections_total{generation="0"}',
    'python_gc_objects_collected_total{generation="2"}',
    "python_info{",
)


def adjacent_free_ports() -> int:
    """A port that is free, and the one after it too."""
    for _ in range(100):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two adjacent free ports")


def samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def assert_process_metrics(text: str) -> dict[str, float]:
    found = samples(text)
    for name in DEFAULT_COLLECTED:
        assert any(key.startswith(name) for key in found), f"{name} missing"
    assert found["process_resident_memory_bytes"] > 1_000_000
    assert found["process_open_fds"] > 0
    return found


async def test_metrics_carry_the_process_and_collector_metrics(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(), role="receiver", bootstrap=broker.bootstrap_servers)
    client = await aiohttp_client(app)
    response = await client.get("/metrics")
    assert response.status == 200
    assert_process_metrics(await response.text())


def test_every_worker_process_exports_its_own(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    first = adjacent_free_ports()
    second = first + 1
    config, port = write_config(tmp_path, server={"worker_metrics_port": first})
    router = RouterProcess(["serve", "--dev", "--workers", "2", "--config", str(config)], tmp_path)
    router_processes.append(router)
    wait_until_ready(f"http://127.0.0.1:{port}", router)
    [supervisor] = [
        line for line in router.log_lines() if line["message"] == "started worker processes"
    ]
    answered: dict[int, int] = {}
    for worker, metrics_port in enumerate((first, second)):
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            found = assert_process_metrics(r.read().decode())
        [info] = [key for key in found if key.startswith("router_process_info{")]
        pid = int(re.search(r'pid="(\d+)"', info).group(1))  # type: ignore[union-attr]
        assert f'worker="{worker}"' in info
        answered[worker] = pid
    assert sorted(answered.values()) == sorted(supervisor["pids"])
    router.signal(signal.SIGTERM)
    assert router.wait(timeout=60) == 0
