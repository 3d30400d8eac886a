"""The secrets RTK itself puts in webhook bodies, and their removal from the bodies the router
copies beyond its raw log.

The webhooks topic keeps every body byte for byte, secrets included, and is restricted by ACL.
Dead-letter copies raw bodies too, but it is read by the people who operate the router, so a
livestream's `streamKey` and `ingestServer` must not travel there. `redact_body` masks the
values of those fields where they stand and leaves every other byte as RTK sent it; when a value
is not written the way it is found (escaped differently), the body is re-serialised with the
fields masked instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Fields whose value is a credential in some RTK event (reference §3.8).
SECRET_FIELDS = frozenset({"streamKey", "ingestServer"})
# Fields of a recording's options whose value is a credential (a start's `storage_config` has
# `access_key` and `secret`, or `password` and `private_key` for SFTP; an RTMP URL holds its
# stream key): never repeated in an error.
CREDENTIAL_FIELDS = frozenset(
    {"secret", "access_key", "secret_key", "password", "private_key", "token", "rtmp_url"}
)
MASK = "***"
_FIELD = b"|".join(re.escape(name.encode()) for name in sorted(SECRET_FIELDS))


def redact_body(body: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The body with the values of `SECRET_FIELDS` masked, and the names of the fields masked
    (none, and the body unchanged, when it has none or is not JSON)."""
    found = _secrets(body)
    if found is None or not found.names:
        return body, ()
    names = tuple(sorted(found.names))
    if found.plain:
        redacted = body
        for value in found.values:
            for encoded in {json.dumps(value), json.dumps(value, ensure_ascii=False)}:
                field = rb'("(?:' + _FIELD + rb')"\s*:\s*)' + re.escape(encoded.encode())
                redacted = re.sub(field, rb'\1"' + MASK.encode() + b'"', redacted)
        left = _secrets(redacted)
        if left is not None and left.plain and left.values <= {MASK}:
            return redacted, names
    return _masked_json(body), names


class _Found:
    """What a body holds in secret fields: their names, their string values, and whether every
    value is a plain string (else they cannot be replaced where they stand)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.values: set[str] = set()
        self.plain = True


def _secrets(body: bytes) -> _Found | None:
    found = _Found()

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        # Every pair, a repeated key's included: a key given twice must not hide a secret.
        for key, value in items:
            if key in SECRET_FIELDS:
                found.names.add(key)
                if isinstance(value, str):
                    found.values.add(value)
                else:
                    found.plain = False
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found


def _masked_json(body: bytes) -> bytes:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        return {key: MASK if key in SECRET_FIELDS else value for key, value in items}

    payload = json.loads(body, object_pairs_hook=pairs)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
