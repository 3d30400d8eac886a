"""Latency summaries and target verdicts: plain numbers in, numbers and lines of text out.

Percentiles use the nearest-rank method on the sorted sample (the value below which `p` per
cent of the observations fall, rounded up to a whole observation), the same definition wrk
uses for its own latency distribution, so both kinds of figure compare like for like.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0 < p <= 100) of `values` by nearest rank; NaN when empty."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return float(ordered[max(rank, 1) - 1])


@dataclass(frozen=True)
class Latency:
    """A latency sample summarised, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> Latency:
        """Summarise durations given in seconds."""
        ms = sorted(s * 1000 for s in samples)
        return cls(
            count=len(ms),
            p50=percentile(ms, 50),
            p90=percentile(ms, 90),
            p99=percentile(ms, 99),
            max=ms[-1] if ms else math.nan,
        )

    def describe(self) -> str:
        """`p50 1.23 ms, p90 ..., p99 ..., max ... (n=...)`."""
        return (
            f"p50 {self.p50:.2f} ms, p90 {self.p90:.2f} ms, p99 {self.p99:.2f} ms, "
            f"max {self.max:.2f} ms (n={self.count})"
        )


@dataclass(frozen=True)
class Target:
    """A figure compared with its target: `at_least` for throughput, else an upper bound."""

    name: str
    value: float
    limit: float
    unit: str
    at_least: bool = False

    @property
    def passed(self) -> bool:
        """Whether the figure meets the target (a missing figure never does)."""
        if math.isnan(self.value):
            return False
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    @property
    def shortfall(self) -> str:
        """How far a missed figure is from its target, in per cent of the target."""
        if self.passed or math.isnan(self.value) or self.limit == 0:
            return ""
        off = abs(self.value - self.limit) / self.limit * 100
        return f" (off by {off:.0f}%)"

    def line(self) -> str:
        """One aligned report line: name, figure, target and PASS or MISS."""
        sign = ">=" if self.at_least else "<="
        value = "n/a" if math.isnan(self.value) else f"{self.value:.2f} {self.unit}".strip()
        limit = f"{self.limit:g} {self.unit}".strip()
        verdict = "PASS" if self.passed else "MISS"
        return f"  {self.name:<48} {value:>12}   target {sign} {limit:<7} {verdict}{self.shortfall}"


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan
