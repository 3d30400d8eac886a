"""Signature verification per source, with the RTK public key fetched, cached and rotated.

A key from `public_key_url` is cached for `key_cache_seconds`; after a failed check it is
fetched again at most once per `refetch_interval_seconds`, which is how a rotated RTK key is
picked up without letting forged requests hammer RTK. With no key at all the delivery gets
503 (`KeyUnavailable`), so that RTK retries instead of dropping the event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from router.clock import monotonic, wall_seconds
from router.config import HmacSignatureConfig, RsaSignatureConfig, SourceConfig
from router.core import signature
from router.errors import KeyUnavailable, SignatureError

log = logging.getLogger("router.verification")


class Verifier(Protocol):
    """Checks one source's deliveries; raises `SignatureError` or `KeyUnavailable`."""

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...

    async def ready(self) -> str | None:
        """None when a key is loaded, else the reason it is not."""


class HmacVerifier:
    """The `hmac` scheme: itsdangerous timestamped signatures over the body digest."""

    def __init__(self, config: HmacSignatureConfig, clock: Callable[[], float] = wall_seconds):
        self._secrets = [s.get_secret_value() for s in config.secrets]
        self._max_age = config.max_age_seconds
        self._clock = clock

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        signature.hmac_verify(
            self._secrets,
            headers.get(signature.HMAC_HEADER),
            body,
            max_age=self._max_age,
            now=int(self._clock()),
        )

    async def ready(self) -> str | None:
        return None


class RsaVerifier:
    """The `rtk-rsa` scheme, with a pinned PEM file or RTK's well-known key URL."""

    def __init__(
        self,
        config: RsaSignatureConfig,
        session: aiohttp.ClientSession,
        extra_keys: Sequence[rsa.RSAPublicKey] = (),
    ) -> None:
        self._config = config
        self._session = session
        self._extra = list(extra_keys)
        self._keys: list[rsa.RSAPublicKey] = []
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_failure_refetch: float | None = None
        self._problem: str | None = "no key fetched yet"
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        if config.public_key_file is not None:
            self._keys = [_read_key_file(config.public_key_file)]
            self._problem = None

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        keys = await self._current_keys()
        header = headers.get(signature.RSA_HEADER)
        try:
            signature.rsa_verify(keys, header, body)
        except SignatureError as exc:
            if exc.reason != "mismatch" or not await self._refetch_after_failure():
                raise
            signature.rsa_verify(self._keys + self._extra, header, body)

    async def ready(self) -> str | None:
        try:
            await self._current_keys()
        except KeyUnavailable as exc:
            return str(exc)
        return None

    @property
    def _pinned(self) -> bool:
        return self._config.public_key_file is not None

    async def _current_keys(self) -> list[rsa.RSAPublicKey]:
        if not self._pinned and self._stale() and self._may_attempt(retry_after=5.0):
            if self._keys or self._extra:
                # A key is at hand: refresh in the background, never hold a delivery up.
                if self._refresh is None or self._refresh.done():
                    self._refresh = asyncio.create_task(self._fetch_locked())
            else:
                await self._fetch_locked()
        keys = self._keys + self._extra
        if not keys:
            raise KeyUnavailable(f"no RTK public key: {self._problem}")
        return keys

    async def _fetch_locked(self) -> None:
        async with self._lock:
            if self._stale() and self._may_attempt(retry_after=5.0):
                await self._fetch()

    def _stale(self) -> bool:
        if not self._keys:
            return True
        assert self._fetched_at is not None
        return monotonic() - self._fetched_at > self._config.key_cache_seconds

    def _may_attempt(self, retry_after: float) -> bool:
        return self._last_attempt is None or monotonic() - self._last_attempt >= retry_after

    async def _refetch_after_failure(self) -> bool:
        """Fetch the key again if allowed now; True when a different key was loaded."""
        if self._pinned:
            return False
        async with self._lock:
            last = self._last_failure_refetch
            if last is not None and monotonic() - last < self._config.refetch_interval_seconds:
                return False
            self._last_failure_refetch = monotonic()
            before = [k.public_numbers() for k in self._keys]
            await self._fetch()
            return [k.public_numbers() for k in self._keys] != before

    async def _fetch(self) -> None:
        url = self._config.public_key_url
        assert url is not None
        self._last_attempt = monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with self._session.get(url, timeout=timeout) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            pem = document["data"]["publicKey"]
            key = signature.load_public_key(str(pem))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            problem = f"fetching {url} failed: {type(exc).__name__}"
            if problem != self._problem:  # once per kind of failure, not every attempt
                log.warning("RTK public key fetch failed", extra={"url": url, "error": problem})
            self._problem = problem
            return
        self._keys = [key]
        self._fetched_at = monotonic()
        self._problem = None
        log.info("RTK public key loaded", extra={"url": url})


def _read_key_file(path: Path) -> rsa.RSAPublicKey:
    try:
        return signature.load_public_key(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyUnavailable(
            f"cannot load public_key_file {path}: {exc}", retriable=False
        ) from None


def build_verifier(
    source: SourceConfig, session: aiohttp.ClientSession, extra_keys: Sequence[rsa.RSAPublicKey]
) -> Verifier:
    """The verifier for a source's scheme; dev keys are trusted by RSA sources only."""
    if isinstance(source.signature, HmacSignatureConfig):
        return HmacVerifier(source.signature)
    return RsaVerifier(source.signature, session, extra_keys)
