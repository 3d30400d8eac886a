"""The `apps` form of the configuration: several RTK apps, each with its sources, credentials
and policy, checked with the same FILE:LINE: path: message problems as the rest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.apps import Apps
from router.config import parse_config
from router.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

SOURCES = """\
sources:
  - name: a-src
    path: /a
    signature: {scheme: rtk-rsa}
  - name: b-src
    path: /b
    signature: {scheme: rtk-rsa}
"""
APPS = """\
apps:
  - name: a
    realtimekit: {app_id: app-a, api_token: "${A_TOKEN:-}"}
    sources: [a-src]
    policy: {mode: enforce, rules: [{name: r, action: start_recording}]}
  - name: b
    sources: [b-src]
    policy: {mode: shadow}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "config.yaml", {})
    return caught.value.problems


def test_the_apps_form_gives_one_app_per_entry() -> None:
    settings = parse_config(SOURCES + APPS, "c.yaml", {"A_TOKEN": "t"}).settings
    apps = Apps.from_settings(settings)
    assert list(apps) == ["a", "b"]
    assert apps["a"].mode == "enforce"
    assert apps["b"].mode == "shadow"
    assert apps["a"].settings.realtimekit.app_id == "app-a"
    assert apps.of_source("b-src") is apps["b"]
    assert apps["a"].policy.version != apps["b"].policy.version
    assert not apps.single


def test_the_single_app_form_is_one_app_named_none() -> None:
    settings = parse_config(SOURCES + "policy: {mode: shadow}\n", "c.yaml", {}).settings
    apps = Apps.from_settings(settings)
    assert list(apps) == [None]
    assert apps.single
    assert apps.of_source("a-src") is apps.of_source("b-src") is apps[None]
    assert apps[None].settings.policy.mode == "shadow"


def test_an_app_without_a_token_runs_in_shadow_mode() -> None:
    apps = Apps.from_settings(parse_config(SOURCES + APPS, "c.yaml", {}).settings)
    assert apps["a"].mode == "shadow"


def test_both_forms_at_once_are_refused() -> None:
    text = SOURCES + "realtimekit: {app_id: x}\npolicy: {mode: shadow}\n" + APPS
    assert problems(text) == [
        "config.yaml:8: realtimekit: not allowed beside apps (each app has its own)",
        "config.yaml:9: policy: not allowed beside apps (each app has its own)",
    ]


def test_a_source_in_two_apps_and_a_source_in_none() -> None:
    text = SOURCES + APPS.replace("sources: [b-src]", "sources: [a-src]")
    assert problems(text) == [
        "config.yaml:5: sources[1].name: source 'b-src' belongs to no app",
        "config.yaml:14: apps[1].sources[0]: source 'a-src' already belongs to app 'a'",
    ]


def test_an_unknown_source_and_a_duplicate_name() -> None:
    text = SOURCES + APPS.replace("sources: [b-src]", "sources: [b-src, c-src]").replace(
        "name: b\n", "name: a\n"
    )
    assert problems(text) == [
        "config.yaml:13: apps[1].name: duplicate app name 'a'",
        "config.yaml:14: apps[1].sources[1]: unknown source 'c-src'",
    ]


def test_an_app_is_checked_like_the_top_level_keys() -> None:
    text = SOURCES + APPS.replace("mode: shadow}", "mode: shadow, rules: [{name: r, action: x}]}")
    text = text.replace("realtimekit: {app_id: app-a", "realtimekit: {app_idd: app-a")
    found = problems(text)
    assert found[0] == "config.yaml:10: apps[0].realtimekit.app_idd: unknown key"
    assert found[1].startswith("config.yaml:15: apps[1].policy.rules[0].action: ")


def test_a_literal_token_in_an_app_is_warned_about() -> None:
    text = SOURCES + APPS.replace('"${A_TOKEN:-}"', "literal-token")
    loaded = parse_config(text, "c.yaml", {})
    assert loaded.warnings == (
        "c.yaml:10: apps[0].realtimekit.api_token: a literal secret; take it from the "
        "environment with ${VAR}",
    )


def test_the_example_passes_check_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "check-config", "--config", "examples/apps.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    apps = Apps.from_settings(
        parse_config((ROOT / "examples/apps.yaml").read_text(), "e", {}).settings
    )
    assert list(apps) == ["prod", "staging"]
