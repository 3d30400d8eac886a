"""The broker going away and coming back: 503 with Retry-After meanwhile, nothing 200 lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from router.app import create_app
from router.broker import EmbeddedBroker
from router.clock import monotonic
from router.config import Settings
from tests.helpers import joined_body, read_topic, rtk_headers, wait_ready

RTK = "/webhooks/realtimekit"


async def test_broker_outage_and_recovery(
    broker: EmbeddedBroker,
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    rtk_private_key: rsa.RSAPrivateKey,
) -> None:
    settings = make_settings(kafka={"ack_timeout_seconds": 1})
    client: TestClient = await aiohttp_client(
        create_app(settings, bootstrap=broker.bootstrap_servers, health_interval=0.5)
    )
    await wait_ready(client, want=True, within=30)  # (the worker owns its partitions)
    before = joined_body(peer_id="before")
    response = await client.post(RTK, data=before, headers=rtk_headers(rtk_private_key, before))
    assert response.status == 200

    await broker.stop()
    during = joined_body(peer_id="during")
    started = monotonic()
    response = await client.post(RTK, data=during, headers=rtk_headers(rtk_private_key, during))
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert monotonic() - started < settings.kafka.ack_timeout_seconds + 3
    body = await wait_ready(client, want=False, within=10)
    assert body["checks"]["broker"] != "ok"
    assert (await client.get("/healthz")).status == 200  # alive all along

    await broker.start()  # same port, empty: every topic is gone
    after = joined_body(peer_id="after")
    deadline = monotonic() + 20
    while True:
        response = await client.post(RTK, data=after, headers=rtk_headers(rtk_private_key, after))
        if response.status == 200:
            break
        assert response.status == 503
        assert monotonic() < deadline
        await asyncio.sleep(0.3)
    await wait_ready(client, want=True, within=20)
    # The acknowledged delivery really is on the (re-created) log, not acknowledged into a void.
    # (The 503'd delivery may land too: the producer may still deliver it after the answer,
    # and RTK's retry of it is then a duplicate the worker recognises. It is not a loss.)
    records = await read_topic(settings.kafka, broker.bootstrap_servers, "rtk.webhooks", expect=1)
    values = [r.value for r in records]
    assert after in values
    assert set(values) <= {during, after}
