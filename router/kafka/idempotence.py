"""Whether the producer asks for idempotence, and what a cluster's answers mean for it.

Idempotence needs a producer id from the cluster (InitProducerId). Some Kafka-compatible
services, older clusters and a standalone `router broker` give out none: their answer is
definitive and, with `kafka.idempotent: auto`, the router produces with `acks=all` alone. A
transient answer (a time-out, a coordinator loading) is never taken for such a refusal.

aiokafka's idempotent producer can stay stuck once its sequence numbers or epoch no longer
match the broker's (aiokafka issue 1017, after a broker blip): every later batch fails the
same way, and only a fresh producer, with a new producer id, gets out of it.
"""

from __future__ import annotations

from typing import Literal

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    IncompatibleBrokerVersion,
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
    UnknownError,
    UnsupportedVersionError,
)

from router.config import KafkaConfig

Idempotence = Literal["auto", "on", "off"]

# InitProducerId answers that say "no producer ids here", for good: unsupported, an unknown
# server error (what a broker without the feature answers), not authorised.
REFUSALS: tuple[type[BaseException], ...] = (
    UnsupportedVersionError,
    IncompatibleBrokerVersion,
    UnknownError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

# Errors that leave an idempotent producer wedged until it is replaced.
WEDGING: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    InvalidProducerEpoch,
)

# What a producer without idempotence risks, said wherever the refusal is reported.
CONSEQUENCE = (
    "producing with acks=all without idempotence: a producer retry may append a webhook twice "
    "(the worker and the consumers de-duplicate by delivery id)"
)


def wanted(config: KafkaConfig) -> Idempotence:
    """The setting in force: `auto` (also `null`) tries it, except against the embedded
    broker, which has none."""
    if config.idempotent is True:
        return "on"
    if config.idempotent is False or config.embedded:
        return "off"
    return "auto"


def is_refusal(exc: BaseException) -> bool:
    """Whether a failed start is the cluster refusing producer ids (not a transient error)."""
    return isinstance(exc, REFUSALS)


def refusal_note(error: str) -> str:
    """The one sentence that reports a refusal (log, `/readyz`)."""
    return f"the cluster refuses idempotent producers (InitProducerId: {error}); {CONSEQUENCE}"


class IdempotenceRefused(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """`kafka.idempotent: true`, and the cluster gives out no producer ids."""

    def __init__(self, error: str) -> None:
        self.reason = (
            f"kafka.idempotent is true but the cluster refuses idempotent producers "
            f"(InitProducerId: {error}); set kafka.idempotent: auto or false to produce "
            "without idempotence"
        )
        super().__init__(self.reason)
