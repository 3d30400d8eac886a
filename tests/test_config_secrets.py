"""No secret in a configuration error: a value reached through a YAML alias, a literal secret
that YAML reads as an alias or a tag, a credential with braces in a recording's options. The
problems still name the file, line and path; only the value is left out. Reloading such a file
on SIGHUP logs the problems without it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from router.config import parse_config
from router.errors import ConfigError
from tests.plugins.process import RouterProcess, wait_until_ready, write_config

SECRET = "sk-live-Qx7vK2m9PLw4RtZ8"
PIECE = 8

VALID = """
sources:
  - name: rtk
    path: /hook
    signature: {scheme: rtk-rsa, public_key_url: "http://127.0.0.1:1/key"}
"""
RULE = """
policy:
  rules:
    - name: r
      on: meeting.participantJoined
      action: start_recording
      recording:
        storage_config: {type: aws, bucket: b, region: r, access_key: a, secret: "%s"}
"""


def leaks(text: str) -> bool:
    return any(SECRET[i : i + PIECE] in text for i in range(len(SECRET) - PIECE + 1))


CASES = {
    "alias-as-key": f"token: &tok {SECRET}\n{VALID}realtimekit:\n  *tok : 1\n",
    "alias-as-scheme": (
        f"token: &tok {SECRET}\nsources:\n  - name: rtk\n    path: /hook\n"
        "    signature: {scheme: *tok}\n"
    ),
    "secret-read-as-alias": f"{VALID}realtimekit:\n  api_token: *{SECRET}\n",
    "secret-read-as-tag": f"{VALID}realtimekit:\n  api_token: !{SECRET} x\n",
    "int-tag-on-a-secret": f"{VALID}realtimekit:\n  api_token: !!int {SECRET}\n",
    "alias-in-a-condition-key": (
        f"token: &tok {SECRET}\n{VALID}policy:\n  rules:\n    - name: r\n"
        "      on: meeting.participantJoined\n      when: {*tok : {equals: x}}\n"
        "      action: start_recording\n"
    ),
    "braces-in-a-storage-secret": VALID + RULE % ("ab{" + SECRET + "}cd"),
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_a_configuration_error_never_repeats_a_secret(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml", {})
    problems = caught.value.problems
    assert problems
    assert all(p.startswith("config.yaml:") for p in problems), problems
    assert not leaks("\n".join(problems)), problems


def test_a_literal_value_is_still_shown() -> None:
    text = "sources:\n  - name: rtk\n    path: /hook\n    signature: {scheme: rsa}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml", {})
    assert any("unknown value 'rsa'" in p for p in caught.value.problems)


def test_a_reload_refused_on_sighup_logs_no_secret(
    tmp_path: Path, router_processes: list[RouterProcess]
) -> None:
    config, port = write_config(tmp_path)
    router = RouterProcess(["serve", "--dev", "--config", str(config)], cwd=tmp_path)
    router_processes.append(router)
    wait_until_ready(f"http://127.0.0.1:{port}", router)

    # The token written unquoted begins with `*`: YAML reads an alias of that name.
    document = json.loads(config.read_text())
    lines = [f"realtimekit:\n  api_token: *{SECRET}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in document.items()]
    config.write_text("\n".join(lines) + "\n")
    router.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("reload refused" in line["message"] for line in router.log_lines()):
        assert time.monotonic() < deadline, router.output
        time.sleep(0.1)
    refused = next(line for line in router.log_lines() if "reload refused" in line["message"])
    assert any("(yaml): found undefined alias" in p for p in refused["problems"])

    # And an alias to a secret anchored elsewhere, used where a scheme name goes.
    document["sources"][0]["signature"]["scheme"] = "*tok"
    text = f"token: &tok {SECRET}\n" + json.dumps(document).replace('"*tok"', "*tok")
    config.write_text(text)
    router.signal(signal.SIGHUP)
    while sum("reload refused" in line["message"] for line in router.log_lines()) < 2:
        assert time.monotonic() < deadline + 10, router.output
        time.sleep(0.1)
    assert router.process.poll() is None
    assert not leaks(router.output), router.output
