"""Real webhooks while a client holds connections against the receiver: the same fixed rate
with nothing else, then while 2,000 idle connections and 300 unfinished 1 MiB bodies are open
(the server's limits at their defaults: see the README's "Limits and time-outs")."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.bodies import Signed
from bench.configs import SOURCE_PATH
from bench.loadgen import fixed_rate
from bench.machine import process_rss_mib
from bench.phases import FixedRate, Run, cpu_names, summarise

IDLE, SLOW = 2000, 300
RATE, SECONDS = 100.0, 5.0
# Declares the largest body the router accepts, sends a tenth of it, and stops.
SLOW_HEAD = (
    f"POST {SOURCE_PATH} HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\n"
    "rtk-signature: AAAA\r\nContent-Length: 1048576\r\n\r\n"
).encode()
SLOW_PART = b"{" + b" " * 104_857

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Hostile:
    """The receiver's latency and memory without and with the held connections."""

    calm: FixedRate
    held: FixedRate
    rss_calm_mib: float
    rss_held_mib: float
    idle_closed: int  # idle connections the router closed to make room
    slow_open: int  # unfinished bodies still waited for when the webhooks were done


async def hostile(run: Run, items: Sequence[Signed]) -> Hostile:
    """`router serve --role receiver`, RATE webhooks/s for SECONDS, calm then held."""
    _enough_descriptors(IDLE + SLOW + 1000)
    count = round(RATE * SECONDS)
    router = await run.start_router(role="receiver")
    streams: list[Stream] = []
    try:
        url = router.url + SOURCE_PATH
        pids = [p for p, name in cpu_names(router.child).items() if name != "broker"]
        calm = await fixed_rate(url, items[:count], rate=RATE, count=count)
        rss_calm = sum(process_rss_mib(p) for p in pids)
        port = urlsplit(router.url).port
        assert port is not None
        idle = await open_streams(port, IDLE)
        slow = await open_streams(port, SLOW, SLOW_HEAD + SLOW_PART)
        streams = idle + slow
        held = await fixed_rate(url, items[count : 2 * count], rate=RATE, count=count)
        rss_held = sum(process_rss_mib(p) for p in pids)
        return Hostile(
            calm=summarise(calm, skip_seconds=1.0),
            held=summarise(held, skip_seconds=1.0),
            rss_calm_mib=rss_calm,
            rss_held_mib=rss_held,
            idle_closed=sum(reader.at_eof() for reader, _ in idle),
            slow_open=sum(not reader.at_eof() for reader, _ in slow),
        )
    finally:
        for _, writer in streams:
            writer.close()
        await run.procs.stop(router.child)


def describe(h: Hostile) -> list[str]:
    """The phase's lines of the report."""
    return [
        f"calm: {h.calm.latency.describe()}, failed {h.calm.failed}",
        f"held: {h.held.latency.describe()}, failed {h.held.failed}",
        f"router RSS calm {h.rss_calm_mib:.1f} MiB, held {h.rss_held_mib:.1f} MiB; "
        f"{h.idle_closed:,} of {IDLE:,} idle connections closed to make room, "
        f"{h.slow_open} of {SLOW} slow bodies still open",
    ]


async def open_streams(port: int, count: int, first: bytes = b"") -> list[Stream]:
    """`count` connections to the router on 127.0.0.1:`port`, each having sent `first`."""
    streams = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if first:
            writer.write(first)
        streams.append((reader, writer))
    return streams


def _enough_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
