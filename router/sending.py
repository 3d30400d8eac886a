"""`router send`: build a correctly signed delivery from a file or an event name, and POST it."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from router.clock import now, wall_seconds
from router.core.delivery import RTK_EVENTS
from router.core.signature import HMAC_HEADER, hmac_sign, load_private_key
from router.errors import UsageError


def build_delivery(
    event: str, *, key_path: Path | None, hmac_secret: str | None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers to send: a file's bytes as they are, or a sample payload."""
    from router.samples import sample_payload, webhook_headers

    path = Path(event)
    if path.is_file():
        body = path.read_bytes()
    elif event in RTK_EVENTS:
        body = json.dumps(sample_payload(event, now=now()), separators=(",", ":")).encode()
    else:
        known = ", ".join(RTK_EVENTS)
        raise UsageError(f"{event!r} is neither a file nor an event name ({known})")
    if hmac_secret is not None:
        signature = hmac_sign(hmac_secret, body, timestamp=int(wall_seconds()))
        return body, {"content-type": "application/json", HMAC_HEADER: signature}
    if key_path is None:
        from router.devkeys import dev_private_key

        private_key = dev_private_key()
    else:
        try:
            private_key = load_private_key(key_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else exc
            raise UsageError(f"cannot use {key_path} as an RSA private key: {reason}") from None
    return body, webhook_headers(private_key, body)


async def post_delivery(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST the delivery; the status and the body of the answer."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.text()
