"""The files a run needs, written into its temporary directory: a key pair and router configs.

Each router gets its own embedded broker (`kafka.bootstrap_servers: embedded` on a free port),
so every phase starts on an empty log and one phase's backlog never reaches the next.
Two settings differ from the shipped defaults, both so that the router does its full work for
every request of a benchmark that must cycle through a finite set of signed bodies or exceed
RTK's real rate limit; both are printed in the report:

- `server.dedupe_content_seconds: 0`: a body sent again with a fresh `rtk-uuid` is appended
  again rather than answered as a duplicate (the uuid check still runs for every request);
- `realtimekit.rate_limit_calls`: RTK allows 1,000 recording calls per 50 s (20/s), which
  200 joins/s exceed tenfold; the limit is raised so the latency measured is the router's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.core.signature import generate_key_pair

SOURCE_PATH = "/webhooks/realtimekit"
RECORD_TITLE_PREFIX = "Rec"  # meetings whose first join starts a recording
NEVER_TITLE_PREFIX = "Unmatched"  # no body has it: a policy whose rule never matches
PARTITIONS = 6  # of the topics the benchmark makes (the router's default)
RATE_LIMIT_CALLS = 1_000_000


@dataclass(frozen=True)
class Keys:
    """Where the run's RSA key pair is."""

    private: Path
    public: Path


def write_keys(directory: Path) -> Keys:
    """A fresh RSA-2048 pair as `private.pem` and `public.pem` in `directory`."""
    private, public = generate_key_pair()
    keys = Keys(directory / "private.pem", directory / "public.pem")
    keys.private.write_bytes(private)
    keys.public.write_bytes(public)
    keys.private.chmod(0o600)
    return keys


@dataclass(frozen=True)
class Emulator:
    """Where the RTK emulator answers, and the ids and token it accepts."""

    base_url: str
    account_id: str = "emulator-account"
    app_id: str = "emulator-app"
    api_token: str = "emulator-token"  # the emulator's well-known local token


def bench_policy(title_prefix: str = RECORD_TITLE_PREFIX) -> dict[str, Any]:
    """The benchmark's policy: start recording on the join of a meeting whose title starts
    with `title_prefix`."""
    return {
        "mode": "enforce",
        "rules": [
            {
                "name": "record-first-join",
                "on": "meeting.participantJoined",
                "when": {"meeting.title": {"regex": f"^{title_prefix}"}},
                "action": "start_recording",
                "recording": {"file_name_prefix": "bench-{meeting.id}"},
            }
        ],
    }


def router_config(
    *,
    port: int,
    broker_port: int,
    public_key: Path,
    emulator: Emulator | None,
    broker: str | None = None,
    title_prefix: str = RECORD_TITLE_PREFIX,
) -> dict[str, Any]:
    """A router configuration for one phase (policy: start recording on the join of a meeting
    whose title starts with `title_prefix`, `Rec` unless given), with its own embedded broker,
    or using another broker (`broker`: host:port)."""
    config: dict[str, Any] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "dedupe_content_seconds": 0,
            "shutdown_grace_seconds": 5,
        },
        "sources": [
            {
                "name": "realtimekit",
                "path": SOURCE_PATH,
                "signature": {"scheme": "rtk-rsa", "public_key_file": str(public_key)},
            }
        ],
        "kafka": {"bootstrap_servers": "embedded", "embedded_port": broker_port},
        "policy": bench_policy(title_prefix),
    }
    if broker is not None:
        # The embedded broker has no idempotent producers; embedded mode turns them off too.
        config["kafka"] = {
            "bootstrap_servers": broker,
            "partitions": PARTITIONS,  # those of the topics the benchmark may have made itself
            "idempotent": False,
            "fetch_max_wait_ms": 20,  # a shared embedded broker
        }
    if emulator is not None:
        config["realtimekit"] = {
            "api_base_url": emulator.base_url,
            "account_id": emulator.account_id,
            "app_id": emulator.app_id,
            "api_token": emulator.api_token,
            "rate_limit_calls": RATE_LIMIT_CALLS,
        }
    return config


def write_router_config(path: Path, config: dict[str, Any]) -> Path:
    """Write `config` (JSON is YAML) to `path` and return it."""
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path
