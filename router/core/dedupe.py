"""Per-instance memory of accepted deliveries, so an RTK retry is answered without logging twice.

Two keys mark a delivery as seen: its `rtk-uuid`, and its `rtk-webhook-id` with the body's
SHA-256 (RTK may give a retry a fresh uuid). Entries expire after a window and the table is
bounded, oldest first, so memory stays flat under any load. The caller passes `now`.
"""

from __future__ import annotations

from collections import OrderedDict


class DeliveryDedupe:
    """Remembers accepted deliveries for `window` seconds, at most `max_entries` keys."""

    def __init__(self, *, window: float, max_entries: int, uuid_window: float = 3600.0) -> None:
        self._content_window = window
        self._uuid_window = max(uuid_window, window)
        self._max = max_entries
        # key -> expiry; insertion order is expiry order because windows are fixed per kind.
        self._uuids: OrderedDict[str, float] = OrderedDict()
        self._contents: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def content_key(webhook_id: str | None, digest: str) -> str:
        """The content key of a delivery: webhook configuration and body digest."""
        return f"{webhook_id or '-'}:{digest}"

    def seen(self, uuid: str | None, content_key: str, now: float) -> bool:
        """Whether a delivery with this uuid or content was accepted within its window."""
        self._expire(now)
        if uuid is not None and uuid in self._uuids:
            return True
        return self._content_window > 0 and content_key in self._contents

    def remember(self, uuid: str | None, content_key: str, now: float) -> None:
        """Record an accepted delivery."""
        if uuid is not None:
            self._put(self._uuids, uuid, now + self._uuid_window)
        if self._content_window > 0:
            self._put(self._contents, content_key, now + self._content_window)

    def __len__(self) -> int:
        return len(self._uuids) + len(self._contents)

    def _put(self, table: OrderedDict[str, float], key: str, expiry: float) -> None:
        table.pop(key, None)
        table[key] = expiry
        while len(table) > self._max:
            table.popitem(last=False)

    def _expire(self, now: float) -> None:
        for table in (self._uuids, self._contents):
            while table:
                key, expiry = next(iter(table.items()))
                if expiry > now:
                    break
                del table[key]
