"""A webhook on the log: how the receiver seals an accepted delivery into a message of the
webhooks topic, and how the worker opens it again. Both sides use this module only, so the
header names, the key and the body's digest are defined once.

A logged webhook is the body exactly as RTK signed it, keyed by its meeting id (so that one
meeting's events stay in order on one partition), with RTK's delivery headers and the router's
own: which source accepted it, its event name, when, and its delivery id. Its copies elsewhere
(dead-letter) never carry `rtk-signature`: a signed copy could be posted back and accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.core.delivery import meeting_key
from router.core.signature import HMAC_HEADER, body_digest
from router.core.timeparse import parse_timestamp
from router.kafka import Consumed, Headers, Outgoing

__all__ = [
    "APP",
    "DELIVERY_ID",
    "ERROR",
    "EVENT",
    "FORWARDED_HEADERS",
    "NOT_COPIED",
    "RECEIVED_AT",
    "REDACTED",
    "RTK_SIGNATURE",
    "RTK_UUID",
    "RTK_WEBHOOK_ID",
    "SOURCE",
    "STAGE",
    "Logged",
    "body_digest",
    "key_of",
    "open_logged",
    "raw_header",
    "seal",
    "seen_key",
    "utf8",
]

RTK_SIGNATURE = "rtk-signature"
RTK_UUID = "rtk-uuid"
RTK_WEBHOOK_ID = "rtk-webhook-id"
# RTK's headers kept with the body, as received, so that consumers can verify the signature.
FORWARDED_HEADERS = (RTK_SIGNATURE, RTK_UUID, RTK_WEBHOOK_ID)
SOURCE = "router-source"
# The app a webhook (and every record made of it) belongs to; not sent in the single-app form.
APP = "router-app"
EVENT = "router-event"
RECEIVED_AT = "router-received-at"
DELIVERY_ID = "router-delivery-id"
# What a dead-letter copy adds: why, at which stage, and which secrets were masked.
ERROR = "router-error"
STAGE = "router-stage"
REDACTED = "router-redacted"
# Never copied off the webhooks topic: a copy that verifies could be posted back and accepted.
# (The HMAC scheme's header is not kept on the log either; named here should that change.)
NOT_COPIED = frozenset({RTK_SIGNATURE, HMAC_HEADER})


def seen_key(body: bytes) -> str:
    """What a meeting's state remembers of a body it processed (128 bits of its SHA-256)."""
    return "b:" + body_digest(body)[:32]


def key_of(payload: Mapping[str, Any]) -> bytes | None:
    """The message key of a webhook: its meeting id, or None for a webhook of no meeting."""
    meeting_id = meeting_key(payload)
    return utf8(meeting_id) if meeting_id is not None else None


def seal(
    topic: str,
    body: bytes,
    payload: Mapping[str, Any],
    *,
    rtk_headers: Mapping[str, str],
    source: str,
    event: str,
    delivery_id: str,
    received_at: str,
    app: str | None = None,
) -> Outgoing:
    """The webhooks-topic message of an accepted delivery (`received_at` in RFC 3339)."""
    headers: Headers = []
    for name in FORWARDED_HEADERS:
        value = rtk_headers.get(name)
        if value is not None:
            headers.append((name, raw_header(value)))
    headers += [
        (SOURCE, source.encode()),
        (EVENT, utf8(event)),
        (RECEIVED_AT, received_at.encode()),
        (DELIVERY_ID, raw_header(delivery_id)),
    ]
    if app is not None:
        headers.append((APP, app.encode()))
    return Outgoing(topic, key_of(payload), body, headers)


@dataclass(frozen=True)
class Logged:
    """A webhook read back from the log."""

    message: Consumed
    meeting_id: str | None  # from the key (None: a webhook of no meeting, or not ours)
    delivery_id: str
    received_at: dt.datetime | None
    source: str
    app: str | None = None  # (None: the single-app form, or a webhook logged before apps)

    @property
    def body(self) -> bytes:
        return self.message.value or b""

    def copy_headers(self) -> Headers:
        """Its headers for a copy onto another topic (never the signature)."""
        return [(k, v) for k, v in self.message.headers if k not in NOT_COPIED]


def open_logged(message: Consumed) -> Logged:
    """A webhooks-topic message as the receiver sealed it (or as close as it comes)."""
    headers = dict(message.headers)
    return Logged(
        message=message,
        meeting_id=message.key.decode("utf-8", "replace") if message.key else None,
        delivery_id=_text(headers.get(DELIVERY_ID))
        or _text(headers.get(RTK_UUID))
        or f"{message.topic}/{message.partition}/{message.offset}",
        received_at=parse_timestamp(_text(headers.get(RECEIVED_AT))),
        source=_text(headers.get(SOURCE)) or "-",
        app=_text(headers.get(APP)),
    )


def raw_header(value: str) -> bytes:
    """A header value as the bytes received (aiohttp decodes them with `surrogateescape`, so
    non-UTF-8 bytes come back unchanged instead of failing the delivery)."""
    return value.encode("utf-8", "surrogateescape")


def utf8(text: str) -> bytes:
    """Text from the JSON body as UTF-8; a lone surrogate (valid JSON, not valid Unicode) is
    written as its `\\uXXXX` escape rather than failing the delivery."""
    return text.encode("utf-8", "backslashreplace")


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value else None
