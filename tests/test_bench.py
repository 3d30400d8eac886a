"""The pure parts of the benchmark (bench/): percentiles, verdicts, /proc parsing, signed
bodies, the router config it writes, wrk's output and profile summaries. No timing here:
figures come only from `python bench/run.py`."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import core_phase, hostile_phases, machine, profile, report, stats
from bench.backtest_phases import Backtested, candidate_config, summary_of
from bench.bodies import Signed, join_body, make_bodies, meeting_joins, sign_all, write_wrk_data
from bench.configs import NEVER_TITLE_PREFIX, Emulator, router_config, write_keys
from bench.drain_phases import Drain, Drained, per_event_us, recorded_meetings
from bench.feed import record_headers
from bench.hostile_phases import Hostile
from bench.loadgen import Shot
from bench.phases import Bare, Ingest, summarise
from bench.plan import parse_args, plan_from
from bench.run import drain_title
from bench.verify_phases import Served, Verify
from bench.wrk import parse_output, write_script
from router.config import parse_config
from router.core.delivery import meeting_key, parse_payload
from router.core.signature import load_public_key, rsa_verify

NOW = dt.datetime(2026, 6, 3, 10, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        pytest.param([5.0], 50, 5.0, id="one value"),
        pytest.param([1, 2, 3, 4], 50, 2.0, id="median of four is the lower middle"),
        pytest.param([4, 1, 3, 2], 100, 4.0, id="unsorted, maximum"),
        pytest.param(list(range(1, 101)), 99, 99.0, id="p99 of 1..100"),
        pytest.param(list(range(1, 1001)), 99, 990.0, id="p99 of 1..1000"),
        pytest.param([7, 7, 7], 1, 7.0, id="smallest rank is the first value"),
    ],
)
def test_percentile_nearest_rank(values: list[float], p: float, expected: float) -> None:
    assert stats.percentile(values, p) == expected


def test_percentile_of_nothing_is_nan_and_p_is_checked() -> None:
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile([1.0], 0)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = stats.Latency.of_seconds([0.001 * n for n in range(1, 101)])
    assert (summary.count, summary.p50, summary.p99, summary.max) == (100, 50.0, 99.0, 100.0)
    assert "p99 99.00 ms" in summary.describe()


@pytest.mark.parametrize(
    ("target", "passed", "shortfall"),
    [
        pytest.param(stats.Target("t", 0.6, 0.5, "x", at_least=True), True, "", id="ratio met"),
        pytest.param(stats.Target("t", 0.25, 0.5, "x", True), False, " (off by 50%)", id="ratio"),
        pytest.param(stats.Target("t", 20.0, 20, "ms"), True, "", id="bound met exactly"),
        pytest.param(stats.Target("t", 30.0, 20, "ms"), False, " (off by 50%)", id="bound missed"),
        pytest.param(stats.Target("t", math.nan, 20, "ms"), False, "", id="no figure"),
    ],
)
def test_target_verdicts(target: stats.Target, passed: bool, shortfall: str) -> None:
    assert target.passed is passed
    assert target.shortfall == shortfall
    assert target.line().rstrip().endswith(("PASS", "MISS" + shortfall))


def test_ratio_of_nothing_is_nan() -> None:
    assert stats.ratio(1.0, 4.0) == 0.25
    assert math.isnan(stats.ratio(1.0, 0.0))


def test_proc_texts_are_parsed() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t: fpu\n"
    assert machine.cpu_model(cpuinfo) == "Example CPU @ 2.0GHz"
    assert machine.mem_total_gib("MemTotal:       25165824 kB\nMemFree: 1 kB\n") == 24.0
    assert machine.rss_kib("Name:\tpython\nVmRSS:\t  102400 kB\n") == 102400
    assert machine.rss_kib("Name:\tzombie\n") == 0
    stat = "42 (a (strange) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0"
    assert machine.cpu_seconds(stat) == 400 / machine.os.sysconf("SC_CLK_TCK")
    assert machine.cpu_jiffies("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 1 0 0 0 0\n") == (15, 100)


def test_the_machine_is_described() -> None:
    lines = machine.describe_static()
    assert [line.split(":")[0] for line in lines] == ["CPU", "cores", "memory", "python", "kernel"]


def test_bodies_are_distinct_joins_signed_with_the_key(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    bodies = make_bodies(3, "Rec meeting", NOW)
    signed = sign_all(keys.private.read_bytes(), bodies)
    public = load_public_key(keys.public.read_text())
    assert len({s.body for s in signed}) == 3
    for item in signed:
        payload, event = parse_payload(item.body)
        assert event == "meeting.participantJoined"
        assert meeting_key(payload) == item.meeting_id
        assert payload["meeting"]["title"].startswith("Rec meeting ")
        rsa_verify([public], item.signature, item.body)


def test_wrk_data_is_one_signature_and_body_per_line(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    signed = sign_all(keys.private.read_bytes(), make_bodies(2, "Weekly sync", NOW))
    path = tmp_path / "data.tsv"
    assert write_wrk_data(path, signed) == 2
    lines = path.read_bytes().splitlines()
    assert [line.split(b"\t", 1) for line in lines] == [
        [s.signature.encode(), s.body] for s in signed
    ]
    script = write_script(tmp_path / "s.lua", data=path, source_path="/hook", threads=2).read_text()
    assert str(path) in script
    assert '"/hook"' in script


def test_a_join_body_is_compact_json() -> None:
    body = join_body("m-1", "Rec 1", NOW)
    assert b"\n" not in body
    assert b": " not in body
    assert json.loads(body)["meeting"]["id"] == "m-1"


def test_the_router_config_validates(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    config = router_config(
        port=8081,
        broker_port=9093,
        public_key=keys.public,
        emulator=Emulator("http://127.0.0.1:8787"),
    )
    settings = parse_config(json.dumps(config), "bench.json", {}).settings
    assert settings.kafka.embedded
    assert settings.kafka.embedded_port == 9093
    assert settings.server.dedupe_content_seconds == 0
    assert settings.policy.rules[0].action == "start_recording"


def test_wrk_output_is_parsed() -> None:
    line = (
        'BENCH-JSON {"requests":1000,"duration_us":2000000,"connect":0,"read":1,"write":0,'
        '"status":3,"timeout":2,"p50_us":1500,"p90_us":2500,"p99_us":9000,"max_us":12000}'
    )
    result = parse_output(f"Running 2s test\n{line}\n")
    assert (result.requests, result.rps, result.errors, result.non_2xx) == (1000, 500.0, 3, 3)
    assert (result.p50, result.p99, result.max) == (1.5, 9.0, 12.0)
    with pytest.raises(RuntimeError, match="no result"):
        parse_output("wrk: connection refused\n")


def test_fixed_rate_figures_skip_the_first_second() -> None:
    shots = [
        Shot("m", due=0.0, sent=0.0, done=0.5, status=200),  # connection set-up, not counted
        Shot("m", due=1.0, sent=1.001, done=1.010, status=200),
        Shot("m", due=1.5, sent=1.502, done=1.520, status=200),
        Shot("m", due=2.0, sent=2.0, done=12.0, status=0),
    ]
    figures = summarise(shots, skip_seconds=1.0)
    assert figures.failed == 1
    assert figures.latency.count == 2
    assert figures.latency.max == pytest.approx(20.0)
    assert figures.lag.max == pytest.approx(2.0)


def test_profile_summary_counts_own_and_inclusive_samples() -> None:
    collapsed = "main (a.py:1);handle (b.py:2);verify (c.py:3) 3\nmain (a.py:1);handle (b.py:2) 1\n"
    own, inclusive = profile.top_functions(collapsed)
    assert own[0] == ("verify (c.py:3)", 75.0)
    assert dict(inclusive)["main (a.py:1)"] == 100.0


def test_quick_plan_counts() -> None:
    plan = plan_from(parse_args(["--quick", "--loop", "asyncio"]))
    assert (plan.wrk_seconds, plan.fixed_seconds, plan.join_seconds) == (8, 10, 10)
    assert (plan.joins, plan.fixed_count, plan.bare_loop) == (2000, 10_000, "asyncio")
    full = plan_from(parse_args(["--join-seconds", "5", "--skip", "bare"]))
    assert (full.wrk_seconds, full.joins, full.skip) == (20, 1000, frozenset({"bare"}))


def test_drain_joins_come_in_rounds_of_distinct_participants() -> None:
    bodies = meeting_joins(3, 4, lambda n: f"Title {n}", NOW)
    assert len(bodies) == 12
    payloads = [parse_payload(body)[0] for _, body in bodies]
    assert [meeting_key(p) for p in payloads] == [m for m, _ in bodies]
    meetings = [m for m, _ in bodies[:3]]
    assert [m for m, _ in bodies] == meetings * 4  # each meeting's n-th join in round n
    for n, meeting in enumerate(meetings):
        mine = [p for p in payloads if p["meeting"]["id"] == meeting]
        assert len({p["participant"]["peerId"] for p in mine}) == 4
        assert len({p["meeting"]["sessionId"] for p in mine}) == 1
        assert {p["meeting"]["title"] for p in mine} == {f"Title {n}"}
        assert [p["participant"]["joinedAt"] for p in mine] == sorted(
            p["participant"]["joinedAt"] for p in mine
        )


def test_one_drain_meeting_in_ten_is_titled_for_a_recording() -> None:
    bodies = meeting_joins(20, 2, drain_title, NOW)
    items = [Signed(m, body, "sig") for m, body in bodies]
    assert recorded_meetings(items) == {bodies[0][0], bodies[10][0]}
    assert not any(drain_title(n).startswith(NEVER_TITLE_PREFIX) for n in range(20))


def test_appended_records_carry_the_receivers_headers() -> None:
    item = Signed("m-1", b"{}", "c2ln")
    headers = dict(record_headers(item, "d-1", "2026-06-03T10:05:00.000Z"))
    assert headers == {
        "rtk-signature": b"c2ln",
        "rtk-uuid": b"d-1",
        "rtk-webhook-id": b"bench-webhook",
        "router-source": b"realtimekit",
        "router-event": b"meeting.participantJoined",
        "router-received-at": b"2026-06-03T10:05:00.000Z",
        "router-delivery-id": b"d-1",
    }


def test_drain_figures_leave_the_start_up_out() -> None:
    done = Drained(
        events=50_000,
        processed=50_000,
        cpu_seconds=6.5,
        wall_seconds=16.0,
        first_commit_seconds=6.0,
        first_committed=1_000,
    )
    assert per_event_us(done, startup_cpu=0.5) == pytest.approx(120.0)
    assert done.rate == pytest.approx(4_900.0)
    short = Drained(50_000, 40_000, 6.5, 180.0, 6.0, 1_000)
    assert not short.complete
    assert math.isnan(per_event_us(short, startup_cpu=0.5))


def worker_config(tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The config of a worker on a broker the benchmark runs (as the drain's)."""
    keys = write_keys(tmp_path)
    return router_config(
        port=8081,
        broker_port=0,
        public_key=keys.public,
        emulator=Emulator("http://127.0.0.1:8787"),
        broker="127.0.0.1:9093",
        **options,
    )


def test_a_never_matching_policy_validates(tmp_path: Path) -> None:
    config = worker_config(tmp_path, title_prefix=NEVER_TITLE_PREFIX)
    settings = parse_config(json.dumps(config), "bench.json", {}).settings
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9093"
    assert config["policy"]["rules"][0]["when"] == {
        "meeting.title": {"regex": f"^{NEVER_TITLE_PREFIX}"}
    }


def test_drain_sizes_and_new_phases() -> None:
    assert plan_from(parse_args(["--quick"])).drain_events == 20_000
    full = plan_from(parse_args(["--skip", "drain", "--skip", "verify", "--skip", "hostile"]))
    assert (full.drain_events, full.skip) == (50_000, frozenset({"drain", "verify", "hostile"}))


def test_the_summary_has_the_drain_and_verify_targets() -> None:
    wrk = parse_output(
        'BENCH-JSON {"requests":8000,"duration_us":2000000,"connect":0,"read":0,"write":0,'
        '"status":0,"timeout":0,"p50_us":1500,"p90_us":2500,"p99_us":9000,"max_us":12000}'
    )
    slower = replace(wrk, requests=7000)
    plain = Drained(50_000, 50_000, 6.5, 16.0, 6.0, 1_000)
    recording = replace(plain, starts=500, recorded=500)
    figures = report.Figures(
        drain=Drain(0.5, 12, plain, recording),
        verify=Verify(Served(wrk, 0.1, 0.02, 8300), Served(slower, 0.12, 0.02, 7300)),
    )
    verdicts = {t.name: (t.value, t.passed) for t in report.targets(figures)}
    assert verdicts["worker drain CPU per event, no recording"] == (pytest.approx(120.0), True)
    assert verdicts["throughput, receiver alone / verifying handler"] == (
        pytest.approx(0.875),
        True,
    )
    text = "\n".join(report.summary(figures))
    assert "500 of 500 recordings started" in text


def test_the_ceilings_come_from_the_run_s_own_figures() -> None:
    wrk = parse_output(
        'BENCH-JSON {"requests":8000,"duration_us":2000000,"connect":0,"read":0,"write":0,'
        '"status":0,"timeout":0,"p50_us":1500,"p90_us":2500,"p99_us":9000,"max_us":12000}'
    )  # 4,000 req/s
    bare = Bare(replace(wrk, requests=40_000), 0.04)  # 20,000 req/s
    one = Ingest(wrk, {"router": 95.0, "broker": 25.0, "wrk": 5.0, "rest": 9.0}, 8000, 0.3)
    figures = report.Figures(
        bare=bare,
        one=one,
        core=core_phase.Core(1000, 100.0, 110.0),
        verify=Verify(Served(wrk, 0.15, 0.02, 8300), Served(wrk, 0.2, 0.02, 8300)),
    )
    lines = report.ceilings(figures, cores=2)
    # one over (0.15 + 0.100) ms is 4,000 req/s, a fifth of the bare server's 20,000
    assert "0.20 x: 4,000 req/s at 0.250 ms/webhook" in lines[-2]
    # 200% of the machine over the 125% that router, broker and wrk took (not "rest")
    assert "1.60 x: --workers 1 took 125% of 200%" in lines[-1]
    assert report.ceilings(report.Figures()) == []


def test_the_core_phase_steps_every_event_of_the_chosen_meetings() -> None:
    joins = meeting_joins(4, 3, lambda n: f"{NEVER_TITLE_PREFIX} {n}", NOW)
    items = [Signed(meeting_id, body, "unchecked") for meeting_id, body in joins]
    figures = core_phase.core(items, rounds=3, meetings=2)
    assert figures.events == 6  # the three joins of each of the first two meetings
    assert 0 < figures.best_us <= figures.median_us


def test_the_summary_and_report_have_the_held_connections_figures() -> None:
    def shots(took: float) -> list[Shot]:
        return [
            Shot("m", 1.0 + i / 100, 1.0 + i / 100, 1.0 + i / 100 + took, 200) for i in range(9)
        ]

    calm = summarise([Shot("m", 0.0, 0.0, 0.1, 200), *shots(0.01)], skip_seconds=1.0)
    held = summarise([Shot("m", 0.0, 0.0, 0.1, 200), *shots(0.03)], skip_seconds=1.0)
    hostile = Hostile(calm, held, 60.0, 110.0, idle_closed=1405, slow_open=300)
    text = "\n".join(report.summary(report.Figures(hostile=hostile)))
    assert "webhooks, connections held" in text
    assert "p99 30.00 ms, failed 0 (calm p99 10.00 ms)" in text
    lines = hostile_phases.describe(hostile)
    assert "1,405 of 2,000 idle connections closed" in lines[2]
    assert "300 of 300 slow bodies still open" in lines[2]


def test_the_backtest_candidate_waits_for_a_third_participant(tmp_path: Path) -> None:
    config = worker_config(tmp_path)
    candidate = candidate_config(config)
    settings = parse_config(json.dumps(candidate), "candidate.json", {}).settings
    [rule] = settings.policy.rules
    assert rule.name == config["policy"]["rules"][0]["name"]
    assert candidate["policy"]["rules"][0]["when"] == {
        "meeting.title": {"regex": "^Rec"},
        "session.participants": {"gte": 3},
    }
    assert config["policy"]["rules"][0]["when"] == {"meeting.title": {"regex": "^Rec"}}


def test_the_backtest_summary_is_found_among_warnings_and_gives_the_target() -> None:
    output = (
        "warning: candidate.json:1: realtimekit.api_token: a literal secret\n"
        '{"summary":{"events":50000,"changed":1500,"gained":[],"lost":["m"],'
        '"recorded":{"started":500,"no_match":49500},"candidate":{}},"changed":[]}\n'
    )
    found = summary_of(output)
    assert (found["events"], found["changed"], found["lost"]) == (50_000, 1_500, ["m"])
    with pytest.raises(RuntimeError, match="printed no JSON"):
        summary_of("warning: only this\n")

    drained = Drained(50_000, 50_000, 6.5, 16.0, 6.0, 1_000)
    backtested = Backtested(drained, 50_000, 50_000, 1_500, 0, 0, 8.0, 5.0)
    assert (backtested.rate, backtested.cpu_rate) == (6_250, 10_000)
    figures = report.Figures(backtest=backtested)
    verdicts = {t.name: (t.value, t.passed) for t in report.targets(figures)}
    assert verdicts["router backtest replay"] == (6_250, True)
    assert "(10,000 per CPU second)" in "\n".join(report.summary(figures))
    assert plan_from(parse_args(["--skip", "drain"])).needs_drain_log
    assert not plan_from(parse_args(["--skip", "drain", "--skip", "backtest"])).needs_drain_log
