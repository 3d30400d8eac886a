"""The server under idle and slow connections (README "Limits and time-outs"): a router under a
1,024 descriptor limit stays open to webhooks while 2,000 idle connections and 300 unfinished
1 MiB bodies are held against it; headers, bodies and idle keep-alives are timed out; no more
than `server.max_body_reads` bodies are read at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.hostile_phases import IDLE, SLOW, SLOW_HEAD, Stream, open_streams
from router.app import CONNECTIONS, create_app
from router.broker import EmbeddedBroker, free_port
from router.config import Settings
from router.listener import ListenerRunner
from tests.helpers import joined_body, read_topic, rtk_headers
from tests.plugins.process import RouterProcess, wait_until_ready, write_config

RTK = "/webhooks/realtimekit"


def enough_descriptors(count: int) -> None:
    """Raise this process's soft limit to the hard one; skip when even that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"needs {count} open files, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def close_streams(streams: list[Stream]) -> None:
    for _, writer in streams:
        writer.close()
    for _, writer in streams:
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_webhook_gets_through_2000_idle_connections_and_300_slow_bodies(
    tmp_path: Path,
    broker: EmbeddedBroker,
    public_key_file: Path,
    rtk_private_key: rsa.RSAPrivateKey,
    make_settings: Callable[..., Settings],
    router_processes: list[RouterProcess],
) -> None:
    """The attack: without limits, idle sockets beyond the descriptor limit stop every accept,
    and unfinished bodies are buffered whole. With them, the idle connections are closed to
    make room, at most `max_body_reads` bodies are read, and a webhook is accepted while the
    slow bodies are still being waited for."""
    enough_descriptors(IDLE + SLOW + 500)
    signature = {"scheme": "rtk-rsa", "public_key_file": str(public_key_file)}
    config, port = write_config(
        tmp_path,
        server={"max_body_bytes": 1_048_576},
        kafka={"bootstrap_servers": broker.bootstrap_servers, "idempotent": False},
    )
    document = json.loads(config.read_text())
    document["sources"][0]["signature"] = signature
    config.write_text(json.dumps(document))
    router = RouterProcess(
        ["serve", "--role", "receiver", "--config", str(config)], tmp_path, open_files=1024
    )
    router_processes.append(router)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(base, router)

    idle = await open_streams(port, IDLE)
    slow = await open_streams(port, SLOW, SLOW_HEAD + b"{" + b" " * 100_000)
    try:
        body = joined_body(meeting_id="m-through")
        timeout = aiohttp.ClientTimeout(total=60)  # a hang guard, not a speed limit
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(
                base + RTK, data=body, headers=rtk_headers(rtk_private_key, body)
            ) as response:
                assert response.status == 200, await response.text()
            async with http.get(base + "/metrics") as response:
                metrics = await response.text()
        # Accepted while every slow body was still being waited for (none timed out yet).
        assert not any(reader.at_eof() for reader, _ in slow)
        assert sum(reader.at_eof() for reader, _ in idle) >= IDLE + SLOW - 900
    finally:
        await close_streams(idle + slow)

    assert metric(metrics, "router_http_connections") <= 900
    assert metric(metrics, "router_http_bodies_reading") == 64  # the others wait, unread
    evicted = 'router_http_connections_closed_total{reason="evicted_idle"}'
    assert metric(metrics, evicted) >= IDLE + SLOW - 900
    kafka = make_settings().kafka
    [logged] = await read_topic(kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert logged.value == body
    # It could not raise its descriptor limit past the hard 1,024, and said so.
    warned = [line for line in router.log_lines() if "open-file limit" in line["message"]]
    assert [line["limit"] for line in warned] == [1024]


@pytest.fixture
async def serve(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    """Start the receiver on a free port with these `server` settings, as `router serve` does."""
    runners: list[ListenerRunner] = []

    async def start(**server: Any) -> tuple[int, Any]:
        settings = make_settings(server={"host": "127.0.0.1", **server})
        app = create_app(settings, role="receiver", bootstrap=broker.bootstrap_servers)
        runner = ListenerRunner(app, app[CONNECTIONS], access_log=None, shutdown_timeout=1)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await aiohttp.web.TCPSite(runner, "127.0.0.1", port).start()
        return port, app

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_headers_that_never_end_are_cut_off(serve: Callable[..., Any]) -> None:
    port, _ = await serve(header_timeout_seconds=0.3, keepalive_timeout_seconds=60)
    [(reader, writer)] = await open_streams(port, 1, b"POST /webhooks/realtimekit HTTP/1.1\r\n")
    assert await asyncio.wait_for(reader.read(), timeout=30) == b""  # closed, nothing said
    await close_streams([(reader, writer)])


async def test_an_idle_keep_alive_connection_is_closed(
    serve: Callable[..., Any], rtk_private_key: rsa.RSAPrivateKey
) -> None:
    port, _ = await serve(keepalive_timeout_seconds=0.3)
    body = joined_body()
    head = "".join(f"{k}: {v}\r\n" for k, v in rtk_headers(rtk_private_key, body).items())
    request = (
        f"POST {RTK} HTTP/1.1\r\nHost: r\r\nContent-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body
    [(reader, writer)] = await open_streams(port, 1, request)
    answer = await asyncio.wait_for(reader.read(), timeout=30)  # to the end: closed
    assert answer.startswith(b"HTTP/1.1 200")
    await close_streams([(reader, writer)])


async def test_a_body_that_does_not_arrive_in_time_gets_503(serve: Callable[..., Any]) -> None:
    port, _ = await serve(body_timeout_seconds=0.3, max_body_bytes=1_048_576)
    [(reader, writer)] = await open_streams(port, 1, SLOW_HEAD + b"{")
    answer = await asyncio.wait_for(reader.read(), timeout=30)
    assert answer.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 5" in answer
    assert b"server.body_timeout_seconds (0.3)" in answer
    await close_streams([(reader, writer)])


async def test_no_more_bodies_are_read_at_once_than_max_body_reads(
    serve: Callable[..., Any], rtk_private_key: rsa.RSAPrivateKey
) -> None:
    port, _ = await serve(max_body_reads=2, max_body_bytes=1_048_576)
    slow = await open_streams(port, 6, SLOW_HEAD + b"{" + b" " * 200_000)
    try:
        async with aiohttp.ClientSession() as http:
            body = joined_body()
            async with http.post(
                f"http://127.0.0.1:{port}{RTK}",
                data=body,
                headers=rtk_headers(rtk_private_key, body),
            ) as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert metric(metrics, "router_http_bodies_reading") == 2
        assert metric(metrics, "router_http_connections") == 6 + 1
        assert not any(reader.at_eof() for reader, _ in slow)  # all still waited for
    finally:
        await close_streams(slow)


async def test_beyond_max_connections_the_longest_idle_one_is_closed(
    serve: Callable[..., Any],
) -> None:
    port, app = await serve(max_connections=3)
    streams = await open_streams(port, 5)
    try:
        oldest = [reader for reader, _ in streams[:2]]
        for reader in oldest:
            assert await asyncio.wait_for(reader.read(), timeout=30) == b""
        assert len(app[CONNECTIONS]) == 3
        assert not any(reader.at_eof() for reader, _ in streams[2:])
    finally:
        await close_streams(streams)
