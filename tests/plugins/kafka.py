"""Fixtures for tests that need the real embedded broker and a running router app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from router.broker import EmbeddedBroker, free_port
from router.config import Settings, parse_config
from router.core.signature import generate_key_pair, load_private_key


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh memory-only broker on a free port, stopped after the test."""
    embedded = EmbeddedBroker(port=free_port())
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.stop()


@pytest.fixture(scope="session")
def rtk_key_pair() -> tuple[bytes, bytes]:
    """An RSA pair standing in for RTK's (private PEM, public PEM)."""
    return generate_key_pair()


@pytest.fixture(scope="session")
def rtk_private_key(rtk_key_pair: tuple[bytes, bytes]) -> rsa.RSAPrivateKey:
    return load_private_key(rtk_key_pair[0])


@pytest.fixture
def public_key_file(tmp_path: Path, rtk_key_pair: tuple[bytes, bytes]) -> Path:
    path = tmp_path / "rtk-public.pem"
    path.write_bytes(rtk_key_pair[1])
    return path


HMAC_SECRETS = ["new-secret-value", "old-secret-value"]


def base_config(public_key_file: Path, **sections: Any) -> dict[str, Any]:
    """A valid configuration as plain data, with both kinds of source."""
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "max_body_bytes": 4096},
        "sources": [
            {
                "name": "realtimekit",
                "path": "/webhooks/realtimekit",
                "signature": {"scheme": "rtk-rsa", "public_key_file": str(public_key_file)},
            },
            {
                "name": "internal",
                "path": "/webhooks/internal",
                "signature": {"scheme": "hmac", "secrets": HMAC_SECRETS, "max_age_seconds": 300},
            },
        ],
        "kafka": {
            "bootstrap_servers": "127.0.0.1:1",
            "ack_timeout_seconds": 2,
            "partitions": 3,
            "idempotent": False,  # the embedded broker has no idempotent producer
            "session_timeout_seconds": 2,  # joins wait half of it: keep tests quick
        },
        "policy": {"mode": "enforce", "rules": []},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


@pytest.fixture
def make_settings(public_key_file: Path) -> Callable[..., Settings]:
    """Settings from `base_config` with sections overridden by keyword."""

    def make(**sections: Any) -> Settings:
        import json

        text = json.dumps(base_config(public_key_file, **sections))
        return parse_config(text, "test.yaml", {}).settings

    return make
