"""Copies cannot be replayed: no message on any topic but the webhooks log carries a signature
that verifies (RTK's `rtk-signature` or the HMAC scheme's `x-router-signature`), and each one,
posted back to the router with its own headers and a fresh `rtk-uuid`, is refused. The
webhooks log, whose messages consumers may re-verify, shows that the check can pass."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.asymmetric import rsa

from router.clock import wall_seconds
from router.core.signature import HMAC_HEADER, RSA_HEADER, hmac_verify, rsa_verify
from router.errors import SignatureError
from router.kafka import Consumed
from tests.plugins.full_run import FullRun
from tests.plugins.topics import HMAC_SECRET, INTERNAL_PATH, RTK_PATH, all_topics


def verifies(key: rsa.RSAPublicKey, message: Consumed) -> bool:
    headers = {k: v.decode("utf-8", "replace") for k, v in message.headers}
    body = message.value or b""
    checks = [
        lambda: rsa_verify([key], headers.get(RSA_HEADER), body),
        lambda: hmac_verify(
            [HMAC_SECRET],
            headers.get(HMAC_HEADER),
            body,
            max_age=10**9,  # however old: a copy read long after must not verify either
            now=int(wall_seconds()),
        ),
    ]
    for check in checks:
        try:
            check()
        except SignatureError:
            continue
        return True
    return False


async def test_no_message_outside_the_webhooks_log_verifies_or_is_accepted_again(
    full_run: FullRun,
) -> None:
    loop, driver = full_run.loop, full_run.driver
    key = loop.emulator.state.private_key.public_key()
    on_log = await driver.read("webhooks")
    assert sum(verifies(key, m) for m in on_log) >= 5  # the check does find a signature

    copies = 0
    for name, topic in all_topics(loop):
        if name == "webhooks":
            continue
        for message in await driver.read(name):
            copies += 1
            assert not verifies(key, message), (topic, message.offset)
            headers = {k: v.decode("utf-8", "replace") for k, v in message.headers}
            headers["rtk-uuid"] = str(uuid.uuid4())
            for path in (RTK_PATH, INTERNAL_PATH):
                async with loop.http.post(
                    driver.router.url + path, data=message.value or b"", headers=headers
                ) as response:
                    assert response.status in (401, 503), (topic, message.offset, path)
    dead = await driver.read("dead_letter")
    assert len(dead) == len(full_run.dead_letter_ids)
    assert copies > len(dead)
