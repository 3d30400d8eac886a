"""The two RTKs of the contract suite: the in-memory fake and the RTK client against the
emulator over HTTP, each with the means to script it (faults, lost answers, participants)."""

from __future__ import annotations

import random
from typing import Any

from router.decision_driver import RecordingApi
from tests.fake_rtk import FakeRtk
from tests.plugins.emulator import Control, FakeTime, MakeClient

MEETING = "m-contract"


class Backend:
    """An RTK to hold to the contract: its API and the means to script it."""

    name: str
    api: RecordingApi

    async def fail(
        self, call: str, status: int, *, count: int = 1, retry_after: float | None = None
    ) -> None:
        raise NotImplementedError

    async def lose_start_answers(self) -> None:
        """From now on a start takes effect, but its answer never arrives."""
        raise NotImplementedError

    async def add_participant(self, custom_participant_id: str, preset: str) -> None:
        raise NotImplementedError

    async def go_live(self, peers: int) -> str:
        """The meeting has a live session with this many peers; its session id."""
        raise NotImplementedError

    async def end_session(self) -> None:
        """The meeting's live session ends."""
        raise NotImplementedError

    async def attempts(self, call: str) -> int:
        raise NotImplementedError

    def waits(self) -> list[float]:
        raise NotImplementedError


class Fake(Backend):
    name = "fake"

    def __init__(self) -> None:
        self.rtk = FakeRtk()
        self.api = self.rtk

    async def fail(
        self, call: str, status: int, *, count: int = 1, retry_after: float | None = None
    ) -> None:
        self.rtk.fail(call, status, count=count, retry_after=retry_after)

    async def lose_start_answers(self) -> None:
        self.rtk.fail("start_recording", None, count=10_000)

    async def add_participant(self, custom_participant_id: str, preset: str) -> None:
        self.rtk.add_participant(MEETING, custom_participant_id, preset)

    async def go_live(self, peers: int) -> str:
        self.rtk.go_live(MEETING, "s-fake", peers)
        return "s-fake"

    async def end_session(self) -> None:
        self.rtk.go_live(MEETING, "s-fake", 0)

    async def attempts(self, call: str) -> int:
        return self.rtk.calls.count(call)

    def waits(self) -> list[float]:
        return self.rtk.waits


class Emulated(Backend):
    name = "emulator"

    def __init__(self, control: Control, make_client: MakeClient, fake_time: FakeTime) -> None:
        self.control = control
        self.make_client = make_client
        self.fake_time = fake_time
        self.api = make_client(control.emulator, retry_seconds=5.0)

    async def fail(
        self, call: str, status: int, *, count: int = 1, retry_after: float | None = None
    ) -> None:
        fault: dict[str, Any] = {"status": status, "count": count, "calls": [call]}
        if retry_after is not None:
            fault["retry_after"] = retry_after
        assert (await self.control.request("POST", "/faults", fault))[0] in (200, 201)

    async def lose_start_answers(self) -> None:
        latency = {"ms": 300, "calls": ["start_recording"]}
        assert (await self.control.request("PUT", "/latency", latency))[0] == 200
        # Every attempt times out after 0.2 s, before the emulator (0.3 s late) starts it; the
        # budget (on the fake clock) lasts for several attempts, longer than the latency.
        self.api = self.make_client(
            self.control.emulator,
            request_timeout=0.2,
            retry_seconds=0.05,
            backoff_base=0.01,
            backoff_cap=0.01,
            rng=random.Random(7),
        )

    async def add_participant(self, custom_participant_id: str, preset: str) -> None:
        row = {"custom_participant_id": custom_participant_id, "preset_name": preset}
        path = f"/meetings/{MEETING}/participants"
        assert (await self.control.request("POST", path, {"participants": [row]}))[0] in (200, 201)

    async def go_live(self, peers: int) -> str:
        steps = [{"action": "join", "participant": f"u-{n}"} for n in range(peers)]
        script = {"meeting_id": MEETING, "steps": steps}
        assert (await self.control.request("POST", "/meetings/play", script))[0] == 202
        await self.control.emulator.state.plays_done()
        meeting = self.control.emulator.state.meetings.meetings[MEETING]
        assert meeting.session_id is not None
        return meeting.session_id

    async def end_session(self) -> None:
        script = {"meeting_id": MEETING, "steps": [{"action": "end"}]}
        assert (await self.control.request("POST", "/meetings/play", script))[0] == 202
        await self.control.emulator.state.plays_done()

    async def attempts(self, call: str) -> int:
        return sum(1 for c in await self.control.calls() if c["call"] == call)

    def waits(self) -> list[float]:
        return self.fake_time.waits
