"""One suite, two RTKs: the in-memory fake (`tests/fake_rtk.py`) and the RTK client against
the emulator over HTTP must answer every case alike, calls of `RecordingApi` and whole
decisions driven through it, so that the fake cannot drift from the emulator."""

from __future__ import annotations

import aiohttp
import pytest

from router.core.decision_flow import Decision, DecisionInput, decide
from router.core.entities import ParticipantInfo
from router.core.meeting_state import MeetingState
from router.core.policy import Policy
from router.decision_driver import drive
from router.errors import RtkApiError
from tests.plugins.emulator import Control, FakeTime, MakeClient, StartEmulator
from tests.plugins.policy import JOINED, LEFT, WEDNESDAY_NOON, policy_of, rule
from tests.rtk_backends import MEETING, Backend, Emulated, Fake


@pytest.fixture(params=["fake", "emulator"])
async def backend(
    request: pytest.FixtureRequest,
    start_emulator: StartEmulator,
    http: aiohttp.ClientSession,
    make_client: MakeClient,
    fake_time: FakeTime,
) -> Backend:
    if request.param == "fake":
        return Fake()
    return Emulated(Control(http, await start_emulator()), make_client, fake_time)


# The calls


async def test_no_active_recording_is_none(backend: Backend) -> None:
    assert await backend.api.active_recording(MEETING) is None


async def test_a_start_is_the_active_recording(backend: Backend) -> None:
    started = await backend.api.start_recording(MEETING, {"max_seconds": 60})

    assert started.status == "INVOKED"
    active = await backend.api.active_recording(MEETING)
    assert active is not None
    assert active.id == started.id


async def test_a_second_start_is_a_409(backend: Backend) -> None:
    await backend.api.start_recording(MEETING, {})

    with pytest.raises(RtkApiError) as caught:
        await backend.api.start_recording(MEETING, {})
    assert caught.value.status == 409
    assert caught.value.retriable is False


async def test_a_second_start_may_be_allowed(backend: Backend) -> None:
    first = await backend.api.start_recording(MEETING, {})
    second = await backend.api.start_recording(MEETING, {"allow_multiple_recordings": True})
    assert second.id != first.id


async def test_a_stop_ends_the_active_recording(backend: Backend) -> None:
    started = await backend.api.start_recording(MEETING, {})

    stopped = await backend.api.stop_recording(started.id)

    assert stopped is not None
    assert stopped.id == started.id
    assert await backend.api.active_recording(MEETING) is None
    with pytest.raises(RtkApiError) as caught:
        await backend.api.stop_recording(started.id)
    assert caught.value.status == 400


async def test_a_stop_of_an_unknown_recording_is_none(backend: Backend) -> None:
    assert await backend.api.stop_recording("no-such-recording") is None


async def test_presets_of_participants(backend: Backend) -> None:
    await backend.add_participant("u-host", "host")

    assert await backend.api.preset_of(MEETING, "u-host") == "host"
    assert await backend.api.preset_of(MEETING, "u-nobody") is None


async def test_a_5xx_then_success_is_one_start(backend: Backend) -> None:
    await backend.fail("start_recording", 500)

    started = await backend.api.start_recording(MEETING, {})

    assert started.status == "INVOKED"
    assert await backend.attempts("start_recording") == 2


async def test_a_429_with_retry_after_is_waited_for(backend: Backend) -> None:
    await backend.fail("start_recording", 429, retry_after=1)

    await backend.api.start_recording(MEETING, {})

    assert await backend.attempts("start_recording") == 2
    assert max(backend.waits()) >= 1.0


async def test_5xx_for_ever_spends_the_budget(backend: Backend) -> None:
    await backend.fail("start_recording", 503, count=10_000)

    with pytest.raises(RtkApiError) as caught:
        await backend.api.start_recording(MEETING, {})

    assert caught.value.status == 503
    assert caught.value.retriable is True
    assert await backend.api.active_recording(MEETING) is None


@pytest.mark.parametrize("status", [401, 403, 400])
async def test_a_refusal_is_final(backend: Backend, status: int) -> None:
    await backend.fail("start_recording", status)

    with pytest.raises(RtkApiError) as caught:
        await backend.api.start_recording(MEETING, {})

    assert caught.value.status == status
    assert caught.value.retriable is False
    assert await backend.attempts("start_recording") == 1


async def test_a_lost_answer_after_the_start(backend: Backend) -> None:
    await backend.lose_start_answers()

    with pytest.raises(RtkApiError) as caught:
        await backend.api.start_recording(MEETING, {})

    assert caught.value.status is None
    assert caught.value.retriable is True
    assert await backend.api.active_recording(MEETING) is not None


# The reconciliation calls


async def test_no_live_session_is_none(backend: Backend) -> None:
    assert await backend.api.active_session(MEETING) is None


async def test_a_live_session_has_its_id_and_count(backend: Backend) -> None:
    session_id = await backend.go_live(2)

    session = await backend.api.active_session(MEETING)

    assert session is not None
    assert (session.id, session.live_participants, session.live) == (session_id, 2, True)


async def test_an_ended_session_is_none(backend: Backend) -> None:
    await backend.go_live(1)
    await backend.end_session()

    assert await backend.api.active_session(MEETING) is None


async def test_a_recording_is_read_by_id(backend: Backend) -> None:
    started = await backend.api.start_recording(MEETING, {})

    found = await backend.api.get_recording(started.id)

    assert found is not None
    assert (found.id, found.status) == (started.id, "INVOKED")
    assert await backend.api.get_recording("no-such-recording") is None


@pytest.mark.parametrize("call", ["active_session", "get_recording"])
async def test_a_reconciliation_call_makes_one_attempt(backend: Backend, call: str) -> None:
    await backend.fail(call, 429, retry_after=2)

    api = backend.api
    check = api.active_session(MEETING) if call == "active_session" else api.get_recording("r")
    with pytest.raises(RtkApiError) as caught:
        await check

    assert (caught.value.status, caught.value.retriable) == (429, True)
    assert caught.value.retry_after == 2
    assert await backend.attempts(call) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_session_check_is_final(backend: Backend, status: int) -> None:
    await backend.fail("active_session", status)

    with pytest.raises(RtkApiError) as caught:
        await backend.api.active_session(MEETING)

    assert (caught.value.status, caught.value.retriable) == (status, False)


# Whole decisions through the driver

START = policy_of(rule("start", on=JOINED))
HOSTS = policy_of(rule("hosts", on=JOINED, when={"participant.preset": {"in": ["host"]}}))
STOP = policy_of(rule("stop", action="stop_recording", on=LEFT))
ANN = ParticipantInfo.model_validate({"peerId": "p-1", "customParticipantId": "u-1"})
FRESH = MeetingState(MEETING, session_id="s-1", peers={"p-1": "u-1"})


async def decided(
    backend: Backend, policy: Policy, state: MeetingState = FRESH, trigger: str = JOINED
) -> Decision:
    flow = decide(DecisionInput(trigger, state, ANN, WEDNESDAY_NOON, policy, "enforce", True))
    result = await drive(flow, backend.api)
    assert result is not None
    return result


async def active_id(backend: Backend) -> str | None:
    active = await backend.api.active_recording(MEETING)
    return None if active is None else active.id


async def test_one_start_however_many_joins(backend: Backend) -> None:
    first = await decided(backend, START)
    again = await decided(backend, START, first.effect.state)
    replayed = await decided(backend, START)  # the state was lost: RTK is asked

    assert first.effect.outcome == "started"
    assert again.effect.outcome == "already_recording"
    assert replayed.effect.outcome == "already_recording"
    assert first.effect.recording_id == again.effect.recording_id == replayed.effect.recording_id
    assert await backend.attempts("start_recording") == 1


async def test_a_409_after_a_race_is_already_recording(backend: Backend) -> None:
    other = await backend.api.start_recording(MEETING, {})  # another instance won the race
    await backend.fail("active_recording", 404)  # and our check came before its start

    decision = await decided(backend, START)

    assert decision.effect.outcome == "already_recording"
    assert decision.effect.recording_id == other.id
    assert await backend.attempts("start_recording") == 2


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (502, None), (429, 1.0)], ids=str)
async def test_a_passing_failure_is_still_one_start(
    backend: Backend, status: int, retry_after: float | None
) -> None:
    await backend.fail("start_recording", status, retry_after=retry_after)

    decision = await decided(backend, START)

    assert decision.effect.outcome == "started"
    assert decision.effect.recording_id == await active_id(backend)


async def test_a_start_whose_answer_was_lost_is_started(backend: Backend) -> None:
    await backend.lose_start_answers()

    decision = await decided(backend, START)

    assert decision.effect.outcome == "started"
    assert decision.effect.error is None
    assert decision.effect.recording_id == await active_id(backend)


async def test_a_spent_budget_with_nothing_started_fails(backend: Backend) -> None:
    await backend.fail("start_recording", 500, count=10_000)

    decision = await decided(backend, START)

    assert decision.effect.outcome == "failed"
    assert decision.effect.dead_letter is True
    assert "HTTP 500" in (decision.effect.error or "")
    assert await active_id(backend) is None


async def test_a_stop_decision(backend: Backend) -> None:
    started = await backend.api.start_recording(MEETING, {})

    stopped = await decided(backend, STOP, trigger=LEFT)
    nothing = await decided(backend, STOP, stopped.effect.state, trigger=LEFT)

    assert (stopped.effect.outcome, stopped.effect.recording_id) == ("stopped", started.id)
    assert nothing.effect.outcome == "not_recording"


async def test_a_decision_on_a_looked_up_preset(backend: Backend) -> None:
    await backend.add_participant("u-1", "host")

    decision = await decided(backend, HOSTS)

    assert decision.preset == "host"
    assert decision.effect.outcome == "started"
