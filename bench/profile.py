"""Optional sampling profile of a router process under load, with py-spy (not a dependency of
the project: `pip install py-spy`). The raw collapsed stacks are kept; the top functions by
own time and by time including callees are printed."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path


def top_functions(
    collapsed: str, limit: int = 15
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(own, inclusive) shares of samples per function, from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return [], []

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / total * 100) for name, n in c.most_common(limit)]

    return share(own), share(inclusive)


async def record(pid: int, seconds: float, out_dir: Path) -> list[str]:
    """Sample `pid` for `seconds`; lines to print (a note when py-spy is missing)."""
    beside = Path(sys.executable).parent / "py-spy"
    binary = str(beside) if beside.exists() else shutil.which("py-spy")
    if binary is None:
        return ["profile: py-spy is not installed (pip install py-spy); skipped"]
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"router-{pid}.txt"
    process = await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds) - 1)),
        "--rate",
        "250",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    if process.returncode != 0 or not raw.exists():
        return [f"profile: py-spy failed: {err.decode(errors='replace').strip()[-300:]}"]
    own, inclusive = top_functions(raw.read_text(errors="replace"))
    lines = [f"profile written to {raw}", "top functions by own time:"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in own]
    lines += ["top functions including callees:"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in inclusive]
    return lines
