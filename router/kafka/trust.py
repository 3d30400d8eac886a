"""Whether the producer may believe the broker: a memory-only broker that restarts comes back
empty while the producer's cached metadata still points at it, and it then acknowledges
messages for topics that no longer exist.

So any broken connection or failed send makes the log *suspect*, and the next send first
checks (and where allowed re-creates) the topics. And a message that was in flight when a
connection broke is not believed either: aiokafka sends it again, and the broker that answers
may be the new, empty one, before anyone re-created its topics; its acknowledgement counts as
none (the receiver answers 503 and RTK retries; the worker sends its records again). Senders
note `breaks` before they send and compare it once acknowledged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.conn import CloseReason

from router.kafka.client import TopicAdmin

BROKE_IN_FLIGHT = (
    "a broker connection broke while the message was in flight: its acknowledgement may come "
    "from a broker that came back empty"
)


class LogTrust:
    """One producer's standing with the log: suspect until its topics have been seen, and how
    many of its broker connections broke so far."""

    def __init__(self, admin: TopicAdmin) -> None:
        self._admin = admin
        self._check_lock = asyncio.Lock()
        self.suspect = True  # nothing is believed until the topics have been seen
        self.breaks = 0

    def watch(self, client: Any) -> None:
        """Hear of the broken connections of an aiokafka client (it has no other hook)."""
        original = client._on_connection_closed

        def on_closed(conn: Any, reason: Any) -> None:
            if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
                self.breaks += 1
                self.mark_suspect()
            original(conn, reason)

        client._on_connection_closed = on_closed

    def mark_suspect(self) -> None:
        """Require a topic check before the next send (broker restarted or unreachable)."""
        self.suspect = True

    async def verify_topics(self) -> list[str]:
        """Check (and re-create) the topics once for all waiting senders; return the missing."""
        async with self._check_lock:
            if not self.suspect:
                return []
            missing = await self._admin.ensure()
            if not missing:
                self.suspect = False
            return missing
