"""HTTP Basic authentication of every console path, and the headers every answer carries.

The credentials are compared as SHA-256 digests with `hmac.compare_digest`, user and password
both, always: the time an answer takes says nothing about how much of a guess was right, nor
how long the real values are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

REALM = 'Basic realm="rtk-router"'

# The page loads its own script and style only; a title that slipped through escaping could
# still run nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class BasicAuth:
    """Checks an `Authorization` header against one username and password."""

    def __init__(self, username: str, password: str) -> None:
        self._user = _digest(username.encode())
        self._password = _digest(password.encode())

    def allows(self, header: str | None) -> bool:
        """Whether `header` carries these credentials."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, _, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(_digest(user), self._user)
        password_ok = hmac.compare_digest(_digest(password), self._password)
        return user_ok & password_ok


def middleware(auth: BasicAuth | None) -> Middleware:
    """Refuse every request without the credentials (unless `auth` is None: `--no-auth`), and
    add the security headers to every answer, refusals and errors included."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if auth is not None and not auth.allows(request.headers.get("Authorization")):
                raise web.HTTPUnauthorized(
                    headers={"WWW-Authenticate": REALM}, text="401: credentials required\n"
                )
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return check


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine can reach (`--no-auth` needs one)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
