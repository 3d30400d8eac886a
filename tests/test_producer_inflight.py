"""A message in flight while the broker connection breaks: aiokafka sends it again, and the
broker that answers may be a memory-only one that came back empty, before its topics were
re-created (it then acknowledges messages for topics that do not exist). So such an
acknowledgement counts as none: `publish` fails (the receiver answers 503, RTK retries) and
`send_all` hands every message back (the worker sends them again)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable

import pytest

from router.broker import EmbeddedBroker
from router.config import Settings
from router.errors import PublishError
from router.kafka import Outgoing, Publisher, TopicAdmin, partition_counts

TOPIC = "t.inflight"


@pytest.fixture
async def publisher(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Publisher, TopicAdmin]]:
    kafka = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}).kafka
    admin = TopicAdmin(kafka, broker.bootstrap_servers, [TOPIC])
    assert await admin.ensure() == []
    publisher = Publisher(kafka, broker.bootstrap_servers, admin)
    await publisher.start()
    try:
        # (topics checked and metadata known: the next sends go straight out)
        await publisher.publish(TOPIC, b"first", key=b"k", headers=[], timeout=10)
        yield publisher, admin
    finally:
        await publisher.stop()
        await admin.close()


async def _restart_under(
    broker: EmbeddedBroker, admin: TopicAdmin, sent: asyncio.Task[object], *, recreate: bool
) -> None:
    """Freeze the broker so that what was just sent is never answered, kill it (the
    connection breaks with the message in flight) and start it again, empty; with `recreate`,
    its topic is created again before aiokafka's resend arrives."""
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(0.5)
    assert not sent.done()  # in flight: the frozen broker cannot have answered
    os.kill(pid, signal.SIGKILL)
    await broker.stop()
    await broker.start()
    if recreate:
        assert await admin.ensure() == []


@pytest.mark.parametrize(
    "recreate", [False, True], ids=["topic-gone-on-the-new-broker", "topic-created-again"]
)
async def test_publish_fails_when_the_connection_broke_while_in_flight(
    broker: EmbeddedBroker,
    publisher: tuple[Publisher, TopicAdmin],
    make_settings: Callable[..., Settings],
    recreate: bool,
) -> None:
    producer, admin = publisher
    before = producer.trust.breaks
    sent = asyncio.create_task(
        producer.publish(TOPIC, b"in flight", key=b"k", headers=[], timeout=30)
    )
    await asyncio.sleep(0)
    await _restart_under(broker, admin, sent, recreate=recreate)
    # (whatever the empty broker answers the resend, it is not taken as the message's)
    with pytest.raises(PublishError, match="in flight" if recreate else None):
        await sent
    assert producer.trust.breaks > before
    if not recreate:
        # What made this necessary: the empty broker acknowledged the resend (aiokafka saw
        # success) for a topic it does not have, so the message is nowhere.
        kafka = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}).kafka
        assert await partition_counts(kafka, broker.bootstrap_servers, [TOPIC]) == {TOPIC: None}


async def test_send_all_hands_every_message_back_when_the_connection_broke(
    broker: EmbeddedBroker, publisher: tuple[Publisher, TopicAdmin]
) -> None:
    producer, admin = publisher
    messages = [Outgoing(TOPIC, b"k", b"%d" % n, []) for n in range(20)]
    sent = asyncio.create_task(producer.send_all(messages, timeout=30))
    await asyncio.sleep(0)
    await _restart_under(broker, admin, sent, recreate=True)
    unsent = await sent
    assert unsent.messages == messages
    assert unsent.error is not None
    assert "in flight" in unsent.error
    # and sent again on a sound connection, they are taken
    assert (await producer.send_all(messages, timeout=30)).messages == []
