"""Closed-loop maximum throughput with `wrk`: a Lua script replays the pre-signed bodies, each
with its own `rtk-signature`, a fresh `rtk-uuid` per request (as RTK gives every delivery), and
reports wrk's own latency distribution as one JSON line."""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

_SCRIPT = r"""
local data_file = "%(data)s"
local source_path = "%(path)s"
local webhook_id = "%(webhook_id)s"
local nonce = "%(nonce)s"
local thread_count = %(threads)d
local next_tid = 0
local bodies, sigs, n, pos, counter = {}, {}, 0, 0, 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  for line in io.lines(data_file) do
    local tab = string.find(line, "\t", 1, true)
    n = n + 1
    sigs[n] = string.sub(line, 1, tab - 1)
    bodies[n] = string.sub(line, tab + 1)
  end
  -- Threads start apart so that they do not send the same bodies at the same moment.
  pos = (tid * math.floor(n / thread_count)) %% n
end

function request()
  pos = pos %% n + 1
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["rtk-signature"] = sigs[pos],
    ["rtk-uuid"] = string.format("%%s-%%04x-4000-8000-%%012x", nonce, tid, counter),
    ["rtk-webhook-id"] = webhook_id,
  }
  return wrk.format("POST", source_path, headers, bodies[pos])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50: float
    p90: float
    p99: float
    max: float
    cpu_seconds: float = 0.0  # what wrk itself used

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line: rate, latency and errors."""
        return (
            f"{self.rps:,.0f} req/s ({self.requests:,} in {self.seconds:.1f} s), "
            f"p50 {self.p50:.2f} ms, p90 {self.p90:.2f} ms, p99 {self.p99:.2f} ms, "
            f"max {self.max:.2f} ms, non-2xx {self.non_2xx}, socket errors {self.errors}"
        )


def wrk_binary() -> str:
    """The wrk executable, or an error saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return found


def write_script(path: Path, *, data: Path, source_path: str, threads: int) -> Path:
    """The Lua script for `data` (lines of `signature<TAB>body`)."""
    path.write_text(
        _SCRIPT
        % {
            "data": str(data),
            "path": source_path,
            "webhook_id": "bench-webhook",
            "nonce": secrets.token_hex(4),
            "threads": threads,
        },
        encoding="utf-8",
    )
    return path


def parse_output(text: str) -> WrkResult:
    """The result from wrk's output (the script's `BENCH-JSON` line)."""
    for line in text.splitlines():
        if line.startswith("BENCH-JSON "):
            raw = json.loads(line.removeprefix("BENCH-JSON "))
            return WrkResult(
                requests=int(raw["requests"]),
                seconds=raw["duration_us"] / 1e6,
                errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
                non_2xx=int(raw["status"]),
                p50=raw["p50_us"] / 1000,
                p90=raw["p90_us"] / 1000,
                p99=raw["p99_us"] / 1000,
                max=raw["max_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")


async def run_wrk(
    url: str, script: Path, *, seconds: float, threads: int, connections: int
) -> WrkResult:
    """Run wrk against `url` for `seconds` (killed if it overruns by half a minute)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return replace(parse_output(out.decode(errors="replace")), cpu_seconds=used)
