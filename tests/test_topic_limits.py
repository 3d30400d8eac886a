"""A cluster whose topics take smaller messages than the largest body the router accepts: one
clear error at start, naming the topic, its limit and what is needed; and what happens when
the broker does not report the limit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.app import MESSAGE_OVERHEAD_BYTES, create_app
from router.broker import EmbeddedBroker
from router.config import Settings
from router.errors import UsageError
from router.kafka import TopicAdmin
from tests.helpers import wait_ready
from tests.plugins.process import write_config

TOPICS = [
    "rtk.webhooks",
    "rtk.recordings",
    "rtk.meetings",
    "rtk.decisions",
    "rtk.dead-letter",
    "rtk.router-state",
]


async def made_by_hand(settings: Settings, bootstrap: str, limit: int | None) -> None:
    """The router's topics, created beforehand with `max.message.bytes` = `limit` (None: the
    setting left out, so the broker reports none)."""
    admin = TopicAdmin(settings.kafka, bootstrap, TOPICS, max_message_bytes=limit)
    try:
        assert await admin.ensure() == []
    finally:
        await admin.close()


async def test_a_topic_too_small_for_the_largest_body_stops_the_start(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()  # (max_body_bytes 4096)
    needed = 4096 + MESSAGE_OVERHEAD_BYTES
    await made_by_hand(settings, broker.bootstrap_servers, 5000)
    app = create_app(settings, role="receiver", bootstrap=broker.bootstrap_servers)
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app))
    with pytest.raises(UsageError) as refused:
        await client.start_server()
    await client.close()
    problem = str(refused.value)
    assert problem.startswith(
        "topic rtk.webhooks takes messages of at most 5000 bytes (max.message.bytes), "
        f"but server.max_body_bytes needs {needed} with room for headers"
    ), problem
    assert "topic rtk.dead-letter takes messages of at most 5000 bytes" in problem
    assert "rtk.decisions" not in problem  # (records, not raw bodies)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_router_serve_says_it_in_one_line_and_exits_2(
    workers: str, broker: EmbeddedBroker, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Also from the worker processes of --workers N (each says the same line)."""
    await made_by_hand(make_settings(), broker.bootstrap_servers, 100_000)
    config, _ = write_config(
        tmp_path,
        kafka={"bootstrap_servers": broker.bootstrap_servers, "idempotent": False},
        server={"max_body_bytes": 1_048_576},
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "router.cli",
            "serve",
            "--workers",
            workers,
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = {line for line in result.stderr.splitlines() if line.startswith("router: ")}
    assert line.startswith(
        "router: topic rtk.webhooks takes messages of at most 100000 bytes (max.message.bytes), "
        f"but server.max_body_bytes needs {1_048_576 + MESSAGE_OVERHEAD_BYTES}"
    ), line


async def test_a_limit_the_broker_does_not_report_is_said_and_the_router_starts(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings()
    await made_by_hand(settings, broker.bootstrap_servers, None)
    caplog.set_level("WARNING", logger="router.health")
    app = create_app(
        settings, role="receiver", bootstrap=broker.bootstrap_servers, health_interval=0.2
    )
    client = await aiohttp_client(app)
    await wait_ready(client)
    [said] = [r for r in caplog.records if "does not report" in r.getMessage()]
    assert str(4096 + MESSAGE_OVERHEAD_BYTES) in said.getMessage()
