"""Configuration: every problem as FILE:LINE: dotted.path: message, env expansion, strict keys."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.config import load_config, parse_config
from router.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
sources:
  - name: realtimekit
    path: /webhooks/realtimekit
    signature:
      scheme: rtk-rsa
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "config.yaml", env or {})
    return caught.value.problems


def test_shipped_config_is_valid_with_no_environment() -> None:
    loaded = load_config(ROOT / "config.yaml", env={})
    settings = loaded.settings
    assert settings.kafka.embedded
    assert settings.realtimekit.api_token.get_secret_value() == ""
    assert settings.sources[0].path == "/webhooks/realtimekit"
    assert loaded.warnings == ()


def test_defaults_fill_what_is_not_written() -> None:
    settings = parse_config(MINIMAL, "c.yaml", {}).settings
    assert settings.server.port == 8080
    assert settings.kafka.ack_timeout_seconds == 5
    assert settings.kafka.topics.state == "rtk.router-state"
    assert settings.policy.mode == "enforce"
    assert settings.reconcile.interval_seconds == 60
    assert settings.reconcile.max_calls_per_minute == 120
    assert settings.reconcile.enabled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL + "serverr:\n  port: 1\n",
            "config.yaml:6: serverr: unknown key",
        ),
        (
            "server:\n  port: eighty\n" + MINIMAL,
            "config.yaml:2: server.port: Input should be a valid integer",
        ),
        (
            MINIMAL.replace("rtk-rsa", "rsa"),
            "config.yaml:5: sources[0].signature.scheme: unknown value 'rsa'",
        ),
        (
            MINIMAL + "      colour: red\n",
            "config.yaml:6: sources[0].signature.colour: unknown key",
        ),
        (
            "sources:\n  - name: x\n    signature: {scheme: rtk-rsa}\n",
            "config.yaml:2: sources[0].path: required key is missing",
        ),
        (
            MINIMAL + "kafka:\n  ack_timeout_seconds: -1\n",
            "config.yaml:7: kafka.ack_timeout_seconds: Input should be greater than 0",
        ),
        (
            MINIMAL + "reconcile:\n  interval_seconds: -5\n",
            "config.yaml:7: reconcile.interval_seconds: Input should be greater than or equal to 0",
        ),
        (
            MINIMAL + "reconcile:\n  interval_seconds: 1\n  max_calls_per_minute: 0\n",
            "config.yaml:8: reconcile.max_calls_per_minute: Input should be greater than 0",
        ),
        (
            MINIMAL + "reconcile:\n  every: 5\n",
            "config.yaml:7: reconcile.every: unknown key",
        ),
        (
            MINIMAL + "sources_extra: 1\nserver: [1]\n",
            "config.yaml:6: sources_extra: unknown key",
        ),
        (
            "sources: []\n",
            "config.yaml:1: sources: List should have at least 1 item",
        ),
        (
            MINIMAL
            + "policy:\n  rules:\n    - name: r\n      when:\n        meeting.title: {regexp: x}\n"
            "      action: skip\n",
            "config.yaml:10: policy.rules[0].when.meeting.title: unknown operator 'regexp'",
        ),
    ],
    ids=[
        "unknown-top-key",
        "wrong-type",
        "unknown-scheme",
        "unknown-nested-key",
        "missing-key",
        "out-of-range",
        "reconcile-interval",
        "reconcile-budget",
        "reconcile-unknown",
        "several-problems",
        "empty-list",
        "policy-operator",
    ],
)
def test_problems_name_file_line_and_path(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems("server:\n  port: x\n  colour: red\nkafka:\n  nope: 1\n" + MINIMAL)
    assert [p.split(": ")[0:2] for p in found] == [
        ["config.yaml:2", "server.port"],
        ["config.yaml:3", "server.colour"],
        ["config.yaml:5", "kafka.nope"],
    ]


def test_yaml_syntax_error_has_a_line() -> None:
    (problem,) = problems(MINIMAL + "server: [unclosed\n")
    assert problem.startswith("config.yaml:7: (yaml):") or problem.startswith("config.yaml:6:")


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${PORT}", {"PORT": "9000"}, 9000),
        ("${PORT:-8081}", {}, 8081),
        ("${PORT:-8081}", {"PORT": "9001"}, 9001),
        ('"${PORT:-8082}"', {}, "8082"),  # quoted stays a string, then pydantic coerces
    ],
    ids=["set", "default", "set-over-default", "quoted"],
)
def test_environment_expansion(value: str, env: dict[str, str], expected: object) -> None:
    settings = parse_config(f"server:\n  port: {value}\n" + MINIMAL, "c.yaml", env).settings
    assert settings.server.port == int(str(expected))


def test_unset_variable_without_default_is_named() -> None:
    (problem,) = problems("realtimekit:\n  api_token: ${RTK_TOKEN}\n" + MINIMAL)
    assert problem == (
        "config.yaml:2: realtimekit.api_token: "
        "environment variable RTK_TOKEN is not set and has no default"
    )


def test_on_key_is_the_string_on() -> None:
    text = MINIMAL + (
        "policy:\n  rules:\n    - name: r\n      on: meeting.participantLeft\n"
        "      action: stop_recording\n"
    )
    rule = parse_config(text, "c.yaml", {}).settings.policy.rules[0]
    assert rule.on == "meeting.participantLeft"


def test_literal_secrets_are_warned_about_and_env_ones_are_not() -> None:
    text = "realtimekit:\n  api_token: abc123\n" + MINIMAL
    (warning,) = parse_config(text, "c.yaml", {}).warnings
    assert warning.startswith("c.yaml:2: realtimekit.api_token: a literal secret")
    assert "abc123" not in warning
    from_env = "realtimekit:\n  api_token: ${TOKEN}\n" + MINIMAL
    assert parse_config(from_env, "c.yaml", {"TOKEN": "abc123"}).warnings == ()


def test_secrets_never_show_in_reprs() -> None:
    text = "realtimekit:\n  api_token: ${TOKEN}\n" + MINIMAL
    settings = parse_config(text, "c.yaml", {"TOKEN": "sekret-token-value"}).settings
    assert "sekret-token-value" not in repr(settings)
    assert "sekret-token-value" not in str(settings.model_dump())


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_check_config_command(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    result = _run("check-config", "--config", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "kafka:\n  bootstrap: x\n")
    result = _run("check-config", "--config", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "bad.yaml:7: kafka.bootstrap: unknown key"
