"""What the figures were measured on, and how much memory a process holds, both from /proc."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

PROC = Path("/proc")


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` of a /proc/cpuinfo text (or the architecture when absent)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.machine() or "unknown"


def mem_total_gib(meminfo: str) -> float:
    """`MemTotal` of a /proc/meminfo text, in GiB (0.0 when absent)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def rss_kib(status: str) -> int:
    """`VmRSS` of a /proc/PID/status text, in KiB (0 when absent: a zombie or kernel thread)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def describe_static() -> list[str]:
    """Lines describing the machine: CPU, cores, memory, Python, kernel."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return [
        f"CPU:     {cpu_model(_read(PROC / 'cpuinfo'))}",
        f"cores:   {cores} (usable by this process: {usable})",
        f"memory:  {mem_total_gib(_read(PROC / 'meminfo')):.1f} GiB",
        f"python:  {platform.python_implementation()} {platform.python_version()}",
        f"kernel:  {platform.system()} {platform.release()} ({platform.machine()})",
    ]


def describe() -> list[str]:
    """The machine, and how busy others keep it (sampled for two seconds, before anything of
    the benchmark runs): on a shared machine every figure should be read with that in mind."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    sample = MachineLoad()
    time.sleep(2)
    busy = sample.percent()
    cores = os.cpu_count() or 1
    return [
        *describe_static(),
        f"load:    {load} (1, 5, 15 min); CPU in use by others now: {busy:.0f}% of {cores * 100}%",
    ]


def process_rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB (0.0 when it is gone)."""
    return rss_kib(_read(PROC / str(pid) / "status")) / 1024


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (from every thread's `children` list)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        found.extend(int(x) for x in _read(task / "children").split())
    return found


def cpu_seconds(stat: str) -> float:
    """User plus system CPU time from a /proc/PID/stat text, in seconds (0.0 when absent)."""
    _, _, rest = stat.rpartition(")")  # the command name may hold spaces and parentheses
    fields = rest.split()
    if len(fields) < 13:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each of `pids`."""
    return {pid: cpu_seconds(_read(PROC / str(pid) / "stat")) for pid in pids}


def command_name(pid: int) -> str:
    """The process's command name (`comm`), e.g. `python3` or `tansu`."""
    return _read(PROC / str(pid) / "comm").strip() or "?"


def command_line(pid: int) -> str:
    """The process's arguments, space-separated."""
    return _read(PROC / str(pid) / "cmdline").replace("\0", " ").strip()


def cpu_jiffies(stat: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from a /proc/stat text."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return sum(values) - idle, sum(values)
    return 0, 0


class MachineLoad:
    """CPU the whole machine used since this object was made, in per cent of one core."""

    def __init__(self) -> None:
        self._busy, self._total = cpu_jiffies(_read(PROC / "stat"))

    def percent(self) -> float:
        """Machine-wide CPU use so far, 100 per core."""
        busy, total = cpu_jiffies(_read(PROC / "stat"))
        cores = os.cpu_count() or 1
        return (busy - self._busy) / max(total - self._total, 1) * 100 * cores


class Others:
    """CPU that processes outside the benchmark used while it measured: the whole machine's,
    less that of the benchmark's own processes (given) and of this one (the load generator)."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = pids
        self._before = process_cpu(pids)
        self._own = time.process_time()
        self._started = time.monotonic()
        self._machine = MachineLoad()

    def percent(self) -> float:
        """Per cent of one core, since this object was made."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        after = process_cpu(self._pids)
        ours = sum(after[p] - self._before[p] for p in self._pids)
        ours += time.process_time() - self._own
        return max(0.0, self._machine.percent() - ours / elapsed * 100)
