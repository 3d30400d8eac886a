"""Signature verification per source, with the RTK public key fetched, cached and rotated.

A key from `public_key_url` is cached for `key_cache_seconds`; after a check that does not
match it is fetched again at most once per `refetch_interval_seconds`, which is how a rotated
RTK key is picked up without letting forged requests hammer RTK (`RsaVerifier` says when such a
delivery gets 401 and when 503). With no key at all the delivery gets 503 (`KeyUnavailable`),
so that RTK retries instead of dropping the event. The key document is read with a time-out
and a size limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from router.clock import monotonic, wall_seconds
from router.config import HmacSignatureConfig, RsaSignatureConfig, SourceConfig
from router.core import signature
from router.errors import AnswerTooLarge, KeyUnavailable, SignatureError
from router.limited import read_limited

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
    """The `rtk-rsa` scheme, with a pinned PEM file or RTK's well-known key URL.

    A signature that does not match the key at hand is refused (401) only when a key fetched
    *after the delivery arrived* refuses it too: RTK signed it before it arrived, so a fetch
    begun later sees any rotation that came before. Until such a key is had, the answer is
    503 (`KeyUnavailable`), which RTK retries; a 401 would lose the delivery for good. So:

    - fetches are single-flight: every delivery that a fetch in progress may decide waits for
      it and is checked again against what it loaded;
    - a mismatch starts a fetch at most once per `refetch_interval_seconds`; a mismatched
      delivery that no fetch begun after its arrival can decide (the window is closed, or the
      fetch failed, timed out, or answered something too large or not a key) gets 503;
    - so forged requests can at most spend the window: they delay a rotated key's first
      deliveries by up to one window of 503s, and never turn one into a 401.
    A pinned `public_key_file` is not fetched: a mismatch against it is a 401 at once.
    """

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
        self._fetched_at: float | None = None  # when the fetch that loaded `_keys` began
        self._last_attempt: float | None = None
        self._last_mismatch_fetch: float | None = None
        self._problem: str | None = "no key fetched yet"
        self._fetch: asyncio.Task[_Fetched] | None = None
        if config.public_key_file is not None:
            self._keys = [_read_key_file(config.public_key_file)]
            self._problem = None

    async def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        arrived = monotonic()
        keys = self._fresh_keys(arrived) or await self._current_keys()
        header = headers.get(signature.RSA_HEADER)
        try:
            signature.rsa_verify(keys, header, body)
        except SignatureError as exc:
            if exc.reason != "mismatch" or self._pinned:
                raise
        else:
            return
        await self._decide_mismatch(header, body, arrived)

    async def ready(self) -> str | None:
        try:
            await self._current_keys()
        except KeyUnavailable as exc:
            return str(exc)
        return None

    @property
    def _pinned(self) -> bool:
        return self._config.public_key_file is not None

    async def _decide_mismatch(self, header: str | None, body: bytes, arrived: float) -> None:
        """Verify again once a fetch begun after `arrived` is done; 503 when none can be."""
        while True:
            task = self._fetch
            if task is None or task.done():
                if not self._window_open():
                    raise KeyUnavailable(
                        "the signature does not match the RTK key at hand and the key may be "
                        "re-fetched only once per refetch_interval_seconds "
                        f"({self._config.refetch_interval_seconds:g}); retry later"
                    )
                self._last_mismatch_fetch = monotonic()
                task = self._start_fetch()
            fetched = await asyncio.shield(task)
            keys = self._keys + self._extra
            try:
                signature.rsa_verify(keys, header, body)
            except SignatureError:
                if fetched.began >= arrived:
                    if fetched.problem is not None:
                        problem = f"no fresh RTK public key: {fetched.problem}"
                        raise KeyUnavailable(problem) from None
                    raise  # a key fetched after the delivery arrived refuses it too
                continue  # a fetch begun before it arrived decides nothing: another one
            return

    def _window_open(self) -> bool:
        last = self._last_mismatch_fetch
        return last is None or monotonic() - last >= self._config.refetch_interval_seconds

    def _fresh_keys(self, now: float) -> list[rsa.RSAPublicKey] | None:
        """The keys at hand when nothing needs fetching (the common case, decided without a
        coroutine); None sends the caller to `_current_keys`."""
        if self._keys and (self._pinned or not self._stale(now)):
            return self._keys + self._extra if self._extra else self._keys
        return None

    async def _current_keys(self) -> list[rsa.RSAPublicKey]:
        if not self._pinned and self._stale() and self._may_attempt(retry_after=5.0):
            task = self._start_fetch()
            if not (self._keys or self._extra):
                await asyncio.shield(task)
            # else a key is at hand: the refresh runs in the background, holding nothing up.
        keys = self._keys + self._extra
        if not keys:
            raise KeyUnavailable(f"no RTK public key: {self._problem}")
        return keys

    def _start_fetch(self) -> asyncio.Task[_Fetched]:
        """The fetch in progress, or a new one: never two at once."""
        if self._fetch is None or self._fetch.done():
            self._fetch = asyncio.create_task(self._fetch_key())
        return self._fetch

    def _stale(self, now: float | None = None) -> bool:
        if not self._keys:
            return True
        assert self._fetched_at is not None
        elapsed = (monotonic() if now is None else now) - self._fetched_at
        return elapsed > self._config.key_cache_seconds

    def _may_attempt(self, retry_after: float) -> bool:
        return self._last_attempt is None or monotonic() - self._last_attempt >= retry_after

    async def _fetch_key(self) -> _Fetched:
        url = self._config.public_key_url
        assert url is not None
        began = self._last_attempt = monotonic()
        try:
            key = await self._download(url)
        except (
            aiohttp.ClientError,
            TimeoutError,
            AnswerTooLarge,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            problem = f"fetching {url} failed: {_describe(exc)}"
            if problem != self._problem:  # once per kind of failure, not every attempt
                log.warning("RTK public key fetch failed", extra={"url": url, "error": problem})
            self._problem = problem
            return _Fetched(began, problem)
        self._keys = [key]
        self._fetched_at = began
        self._problem = None
        log.info("RTK public key loaded", extra={"url": url})
        return _Fetched(began, None)

    async def _download(self, url: str) -> rsa.RSAPublicKey:
        timeout = aiohttp.ClientTimeout(total=self._config.key_fetch_timeout_seconds)
        async with self._session.get(url, timeout=timeout) as response:
            response.raise_for_status()
            raw = await read_limited(
                response, self._config.max_key_bytes, "the key document", "max_key_bytes"
            )
        document = json.loads(raw)
        return signature.load_public_key(str(document["data"]["publicKey"]))


@dataclass(frozen=True)
class _Fetched:
    """One key fetch: when it began, and why it failed (None: a key was loaded)."""

    began: float
    problem: str | None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AnswerTooLarge):
        return str(exc)
    return type(exc).__name__


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
