"""The worker's core alone: `Processor.step` over the drain phase's webhooks, in this process,
with no broker, no event loop and no RTK (the policy matches no meeting), and each touched
meeting's state encoded once per event as the worker writes it.

It separates what deciding costs from what Kafka costs in the drain figure, and it is the
steadiest figure the benchmark prints: the least CPU time of several rounds over the same
events, so a round that shared its core with another process does not count.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bench.bodies import Signed
from bench.configs import NEVER_TITLE_PREFIX, bench_policy
from handlers.base import Ports
from router import envelope
from router.clock import now, rfc3339
from router.config import TopicsConfig
from router.core.delivery import parse_payload
from router.core.meeting_state import MeetingState
from router.core.policy import Policy, PolicyConfig
from router.kafka import Consumed
from router.metrics import Metrics
from router.processing import Processor, Waiting
from router.service import GC_THRESHOLDS

ROUNDS = 15
MEETINGS = 500  # whose events (all of them, in log order) each round processes


@dataclass(frozen=True)
class Core:
    """CPU µs per event of the least costly round, and of the median one."""

    events: int
    best_us: float
    median_us: float


def _logged(items: Sequence[Signed], received_at: dt.datetime) -> list[Consumed]:
    """The webhooks as the receiver seals them and the worker consumes them."""
    topic = TopicsConfig().webhooks
    out = []
    for offset, item in enumerate(items):
        payload, event = parse_payload(item.body)
        delivery_id = str(uuid.uuid4())
        sealed = envelope.seal(
            topic,
            item.body,
            payload,
            rtk_headers={envelope.RTK_SIGNATURE: item.signature, envelope.RTK_UUID: delivery_id},
            source="realtimekit",
            event=event,
            delivery_id=delivery_id,
            received_at=rfc3339(received_at),
        )
        out.append(Consumed(topic, 0, offset, sealed.key, sealed.value, tuple(sealed.headers), 0))
    return out


def core(items: Sequence[Signed], rounds: int = ROUNDS, meetings: int = MEETINGS) -> Core:
    """`rounds` rounds of `Processor.step` over the events of the first `meetings` meetings of
    `items`, each round from empty meeting states."""
    chosen = set(list(dict.fromkeys(i.meeting_id for i in items))[:meetings])
    items = [i for i in items if i.meeting_id in chosen]
    policy_config = PolicyConfig.model_validate(bench_policy(NEVER_TITLE_PREFIX))
    metrics = Metrics()
    ports = Ports(
        policy=Policy.from_config(policy_config), mode="enforce", rtk=None, metrics=metrics, now=now
    )
    processor = Processor(topics=TopicsConfig(), ports=ports, metrics=metrics, now=now)
    messages = _logged(items, now())
    gc.collect()
    gc.freeze()  # as `router serve` does after start-up
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    spent = []
    try:
        for _ in range(rounds):
            states: dict[str, MeetingState] = {}
            started = time.process_time()
            for message in messages:
                logged = envelope.open_logged(message)
                result = processor.step(logged, states.get(logged.meeting_id or ""))
                assert not isinstance(result, Waiting)  # (the policy matches nothing)
                if result.meeting_id is not None and result.state is not None:
                    states[result.meeting_id] = result.state
                    result.state.to_json()
            spent.append((time.process_time() - started) / len(messages) * 1e6)
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    spent.sort()
    return Core(len(messages), spent[0], spent[len(spent) // 2])
