"""Idempotence against a cluster that gives out no producer ids (the test broker refuses them,
as `router broker` does), a transient InitProducerId answer, and a producer wedged on
`OutOfOrderSequenceNumber` replaced by a fresh one (aiokafka issue 1017)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import RequestTimedOutError
from cryptography.hazmat.primitives.asymmetric import rsa

from router.app import create_app
from router.broker import EmbeddedBroker
from router.config import Settings, parse_config
from router.kafka import IdempotenceRefused, Publisher, TopicAdmin
from router.metrics import Metrics
from tests.helpers import joined_body, read_topic, rtk_headers, wait_ready
from tests.plugins.aiokafka_faults import transient_init_pid_answers, wedged_producer
from tests.plugins.kafka import base_config

RTK = "/webhooks/realtimekit"
ABSENT = object()

# aiokafka leaves a connection for the collector to close when InitProducerId fails
# (its sender's request is abandoned by `stop()`); the warning is its, not a leak of ours.
REFUSED_PID_LEAK = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning"
)


def settings_with(public_key_file: Path, idempotent: object) -> Settings:
    config = base_config(public_key_file)
    if idempotent is ABSENT:
        del config["kafka"]["idempotent"]
    else:
        config["kafka"]["idempotent"] = idempotent
    return parse_config(json.dumps(config), "test.yaml", {}).settings


def metric(text: str, name: str) -> float:
    [value] = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return value


@REFUSED_PID_LEAK
@pytest.mark.parametrize("idempotent", [ABSENT, None, "auto"], ids=["no key", "null", "auto"])
async def test_auto_against_a_refusing_cluster_is_ready_and_says_so(
    idempotent: object,
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    public_key_file: Path,
    rtk_private_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cluster (not `embedded`) that gives out no producer ids: the router is ready, says so
    once in the log, as a warning in `/readyz` and in a metric, and accepts webhooks."""
    settings = settings_with(public_key_file, idempotent)
    assert not settings.kafka.embedded
    caplog.set_level("WARNING", logger="router.kafka")
    app = create_app(
        settings, role="receiver", bootstrap=broker.bootstrap_servers, health_interval=0.2
    )
    client = await aiohttp_client(app)
    ready = await wait_ready(client)
    [warning] = [w for w in ready["warnings"] if "idempoten" in w]
    assert "refuses idempotent producers (InitProducerId: UnknownError)" in warning
    assert "without idempotence" in warning
    assert "de-duplicate by delivery id" in warning
    body = joined_body("m-idempotence")
    response = await client.post(RTK, data=body, headers=rtk_headers(rtk_private_key, body))
    assert response.status == 200
    [logged] = await read_topic(settings.kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    assert logged.value == body
    refused = [r for r in caplog.records if "refuses idempotent producers" in r.getMessage()]
    assert len(refused) == 1
    assert refused[0].levelname == "WARNING"
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "router_producer_idempotence_refused ") == 1
    assert metric(metrics, "router_producer_idempotent ") == 0
    gc.collect()  # (aiokafka's abandoned connection, while its warning is ignored)


@REFUSED_PID_LEAK
async def test_required_idempotence_refused_is_the_readiness_reason(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    public_key_file: Path,
) -> None:
    settings = settings_with(public_key_file, True)
    app = create_app(
        settings, role="receiver", bootstrap=broker.bootstrap_servers, health_interval=0.2
    )
    client = await aiohttp_client(app)
    body = await wait_ready(client, want=False)
    deadline = 20
    while "refuses idempotent producers" not in str(body) and deadline > 0:
        await asyncio.sleep(0.5)
        deadline -= 1
        body = await wait_ready(client, want=False)
    reason = body["checks"]["broker"]
    assert reason.startswith("kafka.idempotent is true but the cluster refuses idempotent"), body
    assert "InitProducerId: UnknownError" in reason
    assert "unreachable" not in str(body)
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "router_producer_idempotence_refused ") == 1
    gc.collect()  # (aiokafka's abandoned connection, while its warning is ignored)


@REFUSED_PID_LEAK
async def test_a_transient_answer_is_tried_again_not_taken_for_a_refusal(
    broker: EmbeddedBroker, public_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InitProducerId answered REQUEST_TIMED_OUT: the start fails with that (the readiness
    probe tries again), and only the broker's real answer after it counts as a refusal."""
    kafka = settings_with(public_key_file, True).kafka
    admin = TopicAdmin(kafka, broker.bootstrap_servers, ["rtk.webhooks"])
    metrics = Metrics()
    publisher = Publisher(kafka, broker.bootstrap_servers, admin, metrics=metrics)
    try:
        with transient_init_pid_answers(monkeypatch, count=1) as seen:
            with pytest.raises(RequestTimedOutError):
                await publisher.start()
            assert not publisher.started
            assert metrics.idempotence_refused._value.get() == 0
            with pytest.raises(IdempotenceRefused):
                await publisher.start()
        assert len(seen) == 2
        assert metrics.idempotence_refused._value.get() == 1
    finally:
        await publisher.stop()
        await admin.close()
    gc.collect()


async def test_a_wedged_producer_is_replaced_without_losing_an_acknowledged_webhook(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    public_key_file: Path,
    rtk_private_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The producer gets OUT_OF_ORDER_SEQUENCE_NUMBER for every batch from some point on: the
    webhook in flight is answered 503 (RTK sends it again), a fresh producer takes over, and
    every webhook answered 200 is on the log once, in the order answered."""
    settings = settings_with(public_key_file, False)
    app = create_app(
        settings, role="receiver", bootstrap=broker.bootstrap_servers, health_interval=0.2
    )
    client = await aiohttp_client(app)
    await wait_ready(client)
    bodies = [joined_body("m-wedged", peer_id=f"p-{n}") for n in range(4)]
    headers = [rtk_headers(rtk_private_key, body) for body in bodies]

    async def post(n: int) -> int:
        response = await client.post(RTK, data=bodies[n], headers=headers[n])
        return response.status

    assert await post(0) == 200
    with wedged_producer(monkeypatch) as stuck:
        assert await post(1) == 503  # (the stuck producer's answer)
        assert stuck
        assert await post(2) == 200  # through a fresh producer
        assert await post(1) == 200  # RTK's retry of the refused one
        assert await post(3) == 200
    records = await read_topic(settings.kafka, broker.bootstrap_servers, "rtk.webhooks", expect=5)
    values = [r.value for r in records]
    acknowledged = [bodies[0], bodies[2], bodies[1], bodies[3]]
    for body in acknowledged:
        assert body in values
    # Every acknowledged webhook once, in the order answered; the refused first attempt may
    # have been written too (its retry is a duplicate the worker drops by delivery id).
    assert [v for v in values if v != bodies[1]] == [bodies[0], bodies[2], bodies[3]]
    assert values.index(bodies[2]) < len(values) - 1 - values[::-1].index(bodies[1])
    metrics = await (await client.get("/metrics")).text()
    replaced = 'router_producers_replaced_total{error="OutOfOrderSequenceNumber"} '
    assert metric(metrics, replaced) == 1
