"""Webhook signature schemes, checked on the raw body bytes.

Two schemes exist. `rtk-rsa` is RealtimeKit's: RSA PKCS#1 v1.5 with SHA-256 over the raw body,
base64 in the `rtk-signature` header, with one public key per RTK account. `hmac` is for our own
internal senders: an itsdangerous `TimestampSigner` over the hex SHA-256 of the body, in
`x-router-signature`, verified against a list of secrets so that they can be rotated.

Every failure inside a check, whatever raised it (base64, ASCII, RSA, itsdangerous), becomes the
one `SignatureError`: callers need a single except clause, and a property test holds us to it.
Nothing here reads the clock; the HMAC check is handed `now`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from itsdangerous import BadSignature, TimestampSigner

from router.errors import SignatureError

RSA_HEADER = "rtk-signature"
HMAC_HEADER = "x-router-signature"
HMAC_SALT = "rtk-router"
# A base64 RSA-4096 signature is 684 characters; anything far longer is not worth decoding.
_MAX_SIGNATURE_CHARS = 2048
# An RSA signature is as long as its key's modulus, and no key in use is under 1024 bits: a
# shorter one is malformed whatever key RTK may rotate to, so it is refused without a key
# re-fetch (see `router.verification`).
_MIN_RSA_SIGNATURE_BYTES = 128


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM, first turning literal `\\n` pairs into newlines.

    RTK's well-known endpoint has been seen serving the PEM with escaped newlines.
    Raises `ValueError` when the text is not an RSA public key.
    """
    text = pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem
    text = text.replace("\\n", "\n").strip() + "\n"
    try:
        key = serialization.load_pem_public_key(text.encode("ascii", "replace"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key is not an RSA key")  # noqa: TRY004 - one error for any bad key
    return key


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key from PEM (for signing test and dev deliveries)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key")  # noqa: TRY004 - as above
    return key


def generate_key_pair() -> tuple[bytes, bytes]:
    """A fresh RSA-2048 key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def rsa_sign(private_key: rsa.RSAPrivateKey, body: bytes) -> str:
    """The `rtk-signature` value RTK would send for `body`."""
    signature = private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(public_keys: Sequence[rsa.RSAPublicKey], header: str | None, body: bytes) -> None:
    """Accept when any key verifies `header` over `body`; otherwise raise `SignatureError`."""
    if not header:
        raise SignatureError("missing")
    if len(header) > _MAX_SIGNATURE_CHARS:
        raise SignatureError("malformed")
    try:
        signature = base64.b64decode(header.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError("malformed") from None
    if len(signature) < _MIN_RSA_SIGNATURE_BYTES:
        raise SignatureError("malformed")
    for key in public_keys:
        try:
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            continue
        return
    raise SignatureError("mismatch")


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of the body: what the `hmac` scheme signs and what dedupe compares."""
    return hashlib.sha256(body).hexdigest()


def hmac_sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The `x-router-signature` value for `body`, as if signed at `timestamp` (epoch seconds)."""
    signer = _FixedClockSigner(secret, salt=HMAC_SALT, now=timestamp)
    return signer.sign(body_digest(body)).decode("ascii")


def hmac_verify(
    secrets: Sequence[str], header: str | None, body: bytes, *, max_age: int, now: int
) -> None:
    """Accept when any secret unsigns `header` within `max_age` of `now` and the digest matches."""
    if not header:
        raise SignatureError("missing")
    if len(header) > _MAX_SIGNATURE_CHARS:
        raise SignatureError("malformed")
    expected = body_digest(body).encode("ascii")
    for secret in secrets:
        signer = _FixedClockSigner(secret, salt=HMAC_SALT, now=now)
        try:
            digest = signer.unsign(header, max_age=max_age)
        except (BadSignature, UnicodeError, ValueError):
            continue
        if hmac.compare_digest(digest, expected):
            return
        raise SignatureError("mismatch")
    raise SignatureError("mismatch")


class _FixedClockSigner(TimestampSigner):
    """A `TimestampSigner` whose clock is handed in, so the core never reads the time."""

    def __init__(self, secret: str, *, salt: str, now: int) -> None:
        super().__init__(secret, salt=salt)
        self._now = now

    def get_timestamp(self) -> int:
        return self._now
