"""`redact_body`: the secrets RTK sends (a livestream's stream key and ingest server) are masked in
bodies copied beyond the raw log, and every other byte is kept as RTK sent it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.redaction import MASK, SECRET_FIELDS, redact_body

KEY = "live_sk_5f2c9a1e7d3b4c6a"
INGEST = "rtmps://ingest.example.com:443/live"
LIVESTREAM = {
    "event": "livestreaming.statusUpdate",
    "streamId": "d231d346",
    "status": "LIVE",
    "playbackUrl": "https://example.com/live.m3u8",
    "ingestServer": INGEST,
    "streamKey": KEY,
    "meeting": {"id": "m-1", "title": "Café ☕"},
}


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def in_place(body: bytes) -> bytes:
    """`body` with the two secrets replaced where they stand."""
    for value in (KEY, INGEST):
        body = body.replace(json.dumps(value).encode(), json.dumps(MASK).encode())
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(compact(LIVESTREAM), in_place(compact(LIVESTREAM)), id="compact"),
        pytest.param(
            json.dumps(LIVESTREAM, indent=3).encode() + b"\n",
            in_place(json.dumps(LIVESTREAM, indent=3).encode() + b"\n"),
            id="pretty-and-escaped-unicode",
        ),
        pytest.param(
            b'{"event":"livestreaming.statusUpdate","streamKey":"live_sk_\\u0035f2c"}',
            b'{"event":"livestreaming.statusUpdate","streamKey":"***"}',
            id="escaped-differently",
        ),
        pytest.param(
            b'{"streamKey":"first-key","status":"LIVE","streamKey":"second-key"}',
            b'{"streamKey":"***","status":"LIVE","streamKey":"***"}',
            id="repeated-key",
        ),
        pytest.param(
            b'{"event":"x","ingestServer":{"url":"rtmps://a","key":"k"}}',
            b'{"event":"x","ingestServer":"***"}',
            id="not-a-string",
        ),
        pytest.param(
            b'{"meeting":{"id":"m","nested":[{"streamKey":"deep-key"}]}}',
            b'{"meeting":{"id":"m","nested":[{"streamKey":"***"}]}}',
            id="nested",
        ),
    ],
)
def test_secrets_are_masked_and_the_rest_kept(body: bytes, expected: bytes) -> None:
    redacted, names = redact_body(body)
    assert redacted == expected
    assert names
    assert set(names) <= SECRET_FIELDS


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(compact({"event": "meeting.started", "meeting": {"id": "m"}}), id="none"),
        pytest.param(b'{"event": "x", "note": "streamKey"}', id="only-the-word"),
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_body_without_secrets_is_unchanged(body: bytes) -> None:
    assert redact_body(body) == (body, ())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "status", "event"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    secret=st.text(max_size=30) | st.integers() | st.dictionaries(st.text(max_size=3), JSON),
    other=st.dictionaries(st.sampled_from(["a", "b", "status", "event"]), JSON),
    field=st.sampled_from(sorted(SECRET_FIELDS)),
    ascii_only=st.booleans(),
    indent=st.none() | st.integers(0, 3),
)
def test_a_secret_field_is_masked_and_nothing_else_changes(
    secret: Any, other: dict[str, Any], field: str, ascii_only: bool, indent: int | None
) -> None:
    document = {**other, field: secret}
    body = json.dumps(document, ensure_ascii=ascii_only, indent=indent).encode()
    redacted, names = redact_body(body)
    assert names == (field,)
    assert json.loads(redacted) == {**other, field: MASK}
