"""How long to wait before trying again: capped exponential backoff, the one schedule behind
every retry loop (the RTK client's calls, the worker's publishes and restores).

`base * 2**(attempt - 1)` seconds after the n-th failure, at most `cap`; with `jitter`, a
uniform draw below that ("full jitter"), so that many clients retrying at once spread apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """A retry schedule; `delay(n)` is the wait after the n-th failure (n from 1)."""

    base: float
    cap: float
    jitter: bool = False
    # Jitter only spreads retries apart; it is not a secret.
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """The wait after failure number `attempt`."""
        ceiling = min(self.cap, self.base * 2.0 ** min(max(attempt, 1) - 1, 60))
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def delays(self) -> Iterator[float]:
        """The waits after the first, second, ... failure, without end."""
        attempt = 0
        while True:
            attempt += 1
            yield self.delay(attempt)
