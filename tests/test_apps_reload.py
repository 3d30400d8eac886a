"""The `apps` form in a running `router serve`: /readyz shows each app's mode and policy
version, and SIGHUP reloads each app's policy on its own (an invalid one keeps that app's last
good policy while the others take their new ones)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from tests.plugins.process import RouterProcess, http_json, wait_until_ready, write_config

RULE = {
    "name": "two-or-more",
    "when": {"session.participants": {"gte": 2}},
    "action": "start_recording",
}


def apps_config(tmp_path: Path) -> tuple[Path, int]:
    config, port = write_config(tmp_path)
    document: dict[str, Any] = json.loads(config.read_text())
    second = {**document["sources"][0], "name": "realtimekit-b", "path": "/webhooks/b"}
    document["sources"].append(second)
    document["apps"] = [
        {
            "name": "alpha",
            "realtimekit": {"api_token": "alpha-token", "app_id": "alpha"},
            "sources": ["realtimekit"],
            "policy": {"mode": "enforce", "rules": []},
        },
        {"name": "beta", "sources": ["realtimekit-b"], "policy": {"mode": "enforce"}},
    ]
    config.write_text(json.dumps(document))
    return config, port


def app_states(base: str) -> dict[str, Any]:
    apps: dict[str, Any] = http_json(base + "/readyz")[1]["apps"]
    return apps


def test_readyz_shows_each_app_and_sighup_reloads_each_policy_alone(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    config, port = apps_config(tmp_path)
    router = RouterProcess(["serve", "--dev", "--config", str(config)], cwd=tmp_path)
    router_processes.append(router)
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(base, router)
    first = app_states(base)
    # beta has no API token: its policy runs in shadow mode whatever it says.
    assert {name: app["mode"] for name, app in first.items()} == {
        "alpha": "enforce",
        "beta": "shadow",
    }
    assert first["alpha"]["policy_version"] == first["beta"]["policy_version"]  # both empty

    # alpha's new policy is invalid, beta's is good: beta takes it, alpha keeps its own.
    document = json.loads(config.read_text())
    document["apps"][0]["policy"]["rules"] = [
        {**RULE, "when": {"session.participants": {"gte": "x"}}}
    ]
    document["apps"][1]["policy"]["rules"] = [RULE]
    config.write_text(json.dumps(document))
    router.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while app_states(base)["beta"]["policy_version"] == first["beta"]["policy_version"]:
        assert time.monotonic() < deadline, router.output
        time.sleep(0.1)
    assert app_states(base)["alpha"] == first["alpha"]
    refused = [line for line in router.log_lines() if "refused for this app" in line["message"]]
    assert [line["app"] for line in refused] == ["alpha"]
    assert any("apps[0].policy.rules[0].when" in p for p in refused[0]["problems"])

    # Fixed, alpha takes its new policy too.
    document["apps"][0]["policy"]["rules"] = [RULE]
    config.write_text(json.dumps(document))
    router.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while app_states(base)["alpha"]["policy_version"] == first["alpha"]["policy_version"]:
        assert time.monotonic() < deadline, router.output
        time.sleep(0.1)
    final = app_states(base)
    assert final["alpha"]["policy_version"] == final["beta"]["policy_version"]
    assert router.process.poll() is None
