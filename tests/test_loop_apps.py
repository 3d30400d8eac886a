"""Two RTK apps behind one router, against one emulator serving both by path: each app
decides by its own policy and mode and calls RTK with its own client, every record names its
app, and one app's failing API does not hold up the other's events."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from router.backtest import partition_groups, replay_groups
from router.config import Settings
from router.core.backtest import Comparison
from router.core.policy import PolicyConfig
from router.emulator import RunningEmulator
from router.story import read_story
from tests.plugins.console import serve_console
from tests.plugins.e2e import Loop, RunningRouter, app_config, eventually, wire

APP_B = "emulator-app-b"


def b_source(emulator: RunningEmulator) -> list[dict[str, Any]]:
    key = {"scheme": "rtk-rsa", "public_key_url": emulator.public_key_url}
    return [{"name": "realtimekit-b", "path": "/webhooks/b", "signature": key}]


# alpha (enforce): private meetings are skipped, any other join starts, the last leave stops.
ALPHA = {
    "mode": "enforce",
    "rules": [
        {"name": "a-private", "when": {"meeting.title": {"regex": "^Private"}}, "action": "skip"},
        {"name": "a-start", "action": "start_recording"},
        {
            "name": "a-stop",
            "on": "meeting.participantLeft",
            "when": {"session.participants": 0},
            "action": "stop_recording",
        },
    ],
}
# beta (shadow): two present would start, fewer is skipped, the last leave would stop.
BETA = {
    "mode": "shadow",
    "rules": [
        {
            "name": "b-start",
            "when": {"session.participants": {"gte": 2}},
            "action": "start_recording",
        },
        {"name": "b-alone", "action": "skip"},
        {
            "name": "b-stop",
            "on": "meeting.participantLeft",
            "when": {"session.participants": 0},
            "action": "stop_recording",
        },
    ],
}


def two_apps(alpha: dict[str, Any], beta: dict[str, Any]) -> Callable[[RunningEmulator], Any]:
    def apps(emulator: RunningEmulator) -> list[dict[str, Any]]:
        return [
            app_config(emulator, "alpha", emulator.config.app_id, ["realtimekit"], alpha),
            app_config(emulator, "beta", APP_B, ["realtimekit-b"], beta),
        ]

    return apps


async def make_two_apps(
    make_loop: Callable[..., Awaitable[Loop]], alpha: dict[str, Any], beta: dict[str, Any]
) -> tuple[Loop, RunningRouter]:
    loop = await make_loop(
        {"more_apps": {APP_B: "token-b"}},
        sources=b_source,
        apps=two_apps(alpha, beta),
    )
    router = await loop.start_router()
    await wire(loop, router)
    await loop.control("PUT", f"/apps/{APP_B}/webhooks/url", {"url": router.url + "/webhooks/b"})
    return loop, router


def script(meeting: str, title: str, *people: str, leave: bool = False) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"at": 0.2 * i, "action": "join", "participant": who} for i, who in enumerate(people)
    ]
    if leave:
        n = len(people)
        steps += [
            {"at": 0.2 * (n + i), "action": "leave", "participant": who}
            for i, who in enumerate(people)
        ]
    return {"meeting_id": meeting, "title": title, "end_when_empty": False, "steps": steps}


async def backtest_summary(settings: Settings, app: str | None) -> dict[str, Any]:
    groups = await partition_groups(settings)
    replayed = Comparison.merged(await replay_groups(settings, groups, app=app))
    summary: dict[str, Any] = replayed.as_json()["summary"]
    return summary


def outcomes(decisions: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [(d["trigger"], d["rule"], d["outcome"]) for d in decisions]


async def test_two_apps_decide_by_their_own_rules_and_name_their_app(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    loop, router = await make_two_apps(make_loop, ALPHA, BETA)
    await loop.play(script("m-alpha", "Weekly", "ann", leave=True))
    await loop.play(script("m-alpha-private", "Private chat", "ann"))
    await loop.control(
        "POST", f"/apps/{APP_B}/meetings/play", script("m-beta", "Weekly", "bob", "cy", leave=True)
    )

    alpha = await loop.decisions("m-alpha", expect=2)
    assert outcomes(alpha) == [
        ("meeting.participantJoined", "a-start", "started"),
        ("meeting.participantLeft", "a-stop", "stopped"),
    ]
    [private] = await loop.decisions("m-alpha-private", expect=1)
    assert (private["rule"], private["outcome"]) == ("a-private", "skipped")
    beta = await loop.decisions("m-beta", expect=4)
    assert outcomes(beta) == [
        ("meeting.participantJoined", "b-alone", "skipped"),
        ("meeting.participantJoined", "b-start", "shadow"),
        ("meeting.participantLeft", None, "no_match"),
        ("meeting.participantLeft", "b-stop", "shadow"),
    ]
    assert {d["mode"] for d in alpha} == {"enforce"}
    assert {d["mode"] for d in beta} == {"shadow"}
    assert alpha[0]["policy_version"] != beta[0]["policy_version"]

    # alpha's calls went to alpha's app only; beta (shadow) changed nothing in its app.
    [start] = await loop.starts("m-alpha")
    assert f"/realtime/kit/{loop.emulator.config.app_id}/" in start["path"]
    beta_calls = await loop.control("GET", f"/apps/{APP_B}/calls")
    rows = beta_calls["calls"] if isinstance(beta_calls, dict) else beta_calls
    assert [c for c in rows if c["call"] in ("start_recording", "stop_recording")] == []
    assert await loop.control("GET", f"/apps/{APP_B}/recordings?meeting_id=m-beta") == []

    # Every record on every topic carries its app, in its value and its header.
    apps = {"m-alpha": "alpha", "m-alpha-private": "alpha", "m-beta": "beta"}
    for topic in ("meetings", "decisions", "recordings"):
        records = await loop.topic(topic)
        assert records, topic
        for record in records:
            expected = apps[(record.key or b"").decode()]
            assert json.loads(record.value or b"{}")["app"] == expected, topic
            assert dict(record.headers)["router-app"] == expected.encode(), topic
    recorded = {json.loads(r.value or b"{}")["meeting_id"] for r in await loop.topic("recordings")}
    assert recorded == {"m-alpha"}
    for webhook in await loop.topic("webhooks"):
        expected = apps[(webhook.key or b"").decode()]
        assert dict(webhook.headers)["router-app"] == expected.encode()

    # `router why --app`: a meeting's story from its app's records only.
    story = await read_story(loop.settings.kafka, "m-alpha", app="alpha")
    assert story.verdict is not None
    assert story.verdict.to_json()["verdict"] == "recorded"
    assert (await read_story(loop.settings.kafka, "m-alpha", app="beta")).verdict is None

    # `router backtest --app`: that app's webhooks only, each judged by its app's candidate.
    config = loop.settings.apps
    assert config is not None
    without_alone = [r for r in BETA["rules"] if r["name"] != "b-alone"]
    beta_candidate = PolicyConfig.model_validate({**BETA, "rules": without_alone})
    candidate = loop.settings.model_copy(
        update={"apps": [config[0], config[1].model_copy(update={"policy": beta_candidate})]}
    )
    only_beta = await backtest_summary(candidate, "beta")
    assert only_beta["changed"] == 1  # the first join: skipped -> no_match
    assert only_beta["recorded"] == {"skipped": 1, "shadow": 2, "no_match": 1}
    only_alpha = await backtest_summary(candidate, "alpha")
    assert only_alpha["changed"] == 0
    assert only_alpha["recorded"] == {"started": 1, "stopped": 1, "skipped": 1}
    both = await backtest_summary(candidate, None)
    assert both["events"] == only_alpha["events"] + only_beta["events"]

    # `router console --app`: that app's meetings only, and the page names the app.
    async with AsyncExitStack() as stack:
        url = await serve_console(stack, loop.settings, require_auth=False, app_name="beta")

        async def listed() -> list[str]:
            async with loop.http.get(url + "/api/meetings?limit=10") as response:
                body = await response.json()
            return [m["meeting_id"] for m in body["meetings"]]

        assert await eventually(listed) == ["m-beta"]
        async with loop.http.get(url + "/meetings/m-beta") as response:
            assert '<code id="meeting-app">beta</code>' in await response.text()
        async with loop.http.get(url + "/api/meetings/m-alpha") as response:
            assert response.status == 404

    # The metrics of an app carry its name.
    version = beta[0]["policy_version"]
    async with loop.http.get(router.url + "/metrics") as response:
        metrics = await response.text()
    for line in (
        'router_decisions_total{app="alpha",outcome="started"} 1.0',
        'router_decisions_total{app="beta",outcome="shadow"} 2.0',
        'router_rtk_api_calls_total{app="alpha",call="start_recording",outcome="ok"} 1.0',
        'router_webhooks_total{app="beta",event="meeting.participantJoined",'
        'source="realtimekit-b",status="200"} 2.0',
        f'router_policy_info{{app="beta",mode="shadow",policy_version="{version}"}} 1.0',
    ):
        assert line in metrics, line


async def test_one_apps_failing_api_does_not_hold_up_the_other(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    start_both = {"mode": "enforce", "rules": [{"name": "start", "action": "start_recording"}]}
    loop, _router = await make_two_apps(make_loop, start_both, start_both)
    # alpha's API answers 500 to every start for as long as the test runs.
    await loop.control(
        "POST", "/faults", {"status": 500, "count": 10_000, "calls": ["start_recording"]}
    )
    await loop.play(script("m-down", "Weekly", "ann"))
    await eventually(lambda: loop.calls("start_recording"))  # alpha is retrying

    await loop.control("POST", f"/apps/{APP_B}/meetings/play", script("m-up", "Weekly", "bob"))
    [served] = await loop.decisions("m-up", expect=1)
    assert (served["app"], served["outcome"]) == ("beta", "started")
    # ...while alpha's start is still being retried: no decision for it yet.
    assert await loop.decisions("m-down", expect=0, timeout=0) == []
    assert all(c["status"] == 500 for c in await loop.calls("start_recording"))
    beta_calls = await loop.control("GET", f"/apps/{APP_B}/calls")
    rows = beta_calls["calls"] if isinstance(beta_calls, dict) else beta_calls
    assert [c["status"] for c in rows if c["call"] == "start_recording"] == [201]
