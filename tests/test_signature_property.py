"""Properties of verification: arbitrary headers and bodies either verify or are refused with
the one signature error (401 over HTTP), never another status, never an exception."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.config import Settings
from router.core.signature import (
    HMAC_HEADER,
    RSA_HEADER,
    generate_key_pair,
    hmac_verify,
    load_private_key,
    load_public_key,
    rsa_sign,
    rsa_verify,
)
from router.errors import SignatureError
from tests.plugins.kafka import HMAC_SECRETS
from tests.plugins.live import LiveRouter

_PRIVATE, _PUBLIC = generate_key_pair()
PRIVATE = load_private_key(_PRIVATE)
PUBLIC = load_public_key(_PUBLIC)

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=400,
)
bodies = st.binary(max_size=2000)
REASONS = {"missing", "malformed", "mismatch", "verified"}


def outcome(check: Callable[[], None]) -> str:
    """'verified', or the reason of the one signature error; anything else escapes and fails."""
    try:
        check()
    except SignatureError as exc:
        return exc.reason
    return "verified"


@given(header=st.none() | header_text, body=bodies)
def test_rsa_verify_raises_only_the_signature_error(header: str | None, body: bytes) -> None:
    assert outcome(lambda: rsa_verify([PUBLIC], header, body)) in REASONS


@given(body=bodies)
def test_rsa_signature_roundtrip(body: bytes) -> None:
    rsa_verify([PUBLIC], rsa_sign(PRIVATE, body), body)


@given(
    header=st.none() | header_text,
    body=bodies,
    now=st.integers(min_value=-(2**40), max_value=2**40),
)
def test_hmac_verify_raises_only_the_signature_error(
    header: str | None, body: bytes, now: int
) -> None:
    check = lambda: hmac_verify(HMAC_SECRETS, header, body, max_age=300, now=now)  # noqa: E731
    assert outcome(check) in REASONS


@pytest.fixture(scope="module")
def live(
    live_router_factory: list[LiveRouter], tmp_path_factory: pytest.TempPathFactory
) -> LiveRouter:
    from router.config import parse_config
    from tests.plugins.kafka import base_config

    key_file: Path = tmp_path_factory.mktemp("keys") / "public.pem"
    key_file.write_bytes(_PUBLIC)
    config = base_config(key_file, server={"max_body_bytes": 4096})
    settings: Settings = parse_config(json.dumps(config), "t.yaml", {}).settings
    router = LiveRouter(settings)
    router.start()
    live_router_factory.append(router)
    return router


header_names = st.sampled_from(
    [RSA_HEADER, HMAC_HEADER, "rtk-uuid", "rtk-webhook-id", "content-type", "x-other"]
)


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/webhooks/realtimekit", "/webhooks/internal"]),
    headers=st.dictionaries(header_names, header_text, max_size=5),
    body=bodies,
)
def test_http_arbitrary_deliveries_get_401(
    live: LiveRouter, path: str, headers: dict[str, str], body: bytes
) -> None:
    status = _post(live.port, path, body, headers)
    assert status == 401


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    noise=st.dictionaries(
        st.sampled_from(["rtk-uuid", "rtk-webhook-id", "x-other"]), header_text, max_size=3
    ),
    body=bodies,
)
def test_http_authentic_deliveries_are_never_401(
    live: LiveRouter, noise: dict[str, str], body: bytes
) -> None:
    headers = {**noise, RSA_HEADER: rsa_sign(PRIVATE, body)}
    status = _post(live.port, "/webhooks/realtimekit", body, headers)
    assert status in {200, 400}
