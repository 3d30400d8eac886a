"""The consumer example `examples/follow_recording.py`, run as a user would run it, against a
loop whose policy records a meeting: it follows the recording to UPLOADED and prints where to
download it; and the README shows exactly that file."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.plugins.e2e import Loop
from tests.plugins.topics import RECORD_WHILE_PRESENT, Driver, has_type, start_driver

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "follow_recording.py"
DOCS = REPO / "README.md"
RC = "recording.status_changed"


async def run_example(bootstrap: str, wanted: str, timeout: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        bootstrap,
        wanted,
        str(timeout),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def ready(driver: Driver) -> None:
    """Wait until the router answers ready (its topics exist)."""
    url = driver.router.url + "/readyz"
    for _ in range(100):
        async with driver.loop.http.get(url) as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.2)
    raise AssertionError("the router never became ready")


async def test_the_example_follows_a_recording_to_its_download_url(
    make_loop: Callable[..., Awaitable[Loop]],
) -> None:
    driver = await start_driver(make_loop, policy=RECORD_WHILE_PRESENT)
    loop = driver.loop
    await ready(driver)
    bootstrap = loop.broker.bootstrap_servers
    meeting_id = "m-example"

    # Started before the meeting: it waits for the recording and follows it live.
    by_meeting = await run_example(bootstrap, meeting_id, 60)
    script = {"meeting_id": meeting_id, "title": "Example"}
    await loop.play({**script, "steps": [{"action": "join", "participant": "alice"}]})
    await driver.messages("recordings", key=meeting_id, until=has_type(RC, status="RECORDING"))
    await loop.play({**script, "steps": [{"action": "leave", "participant": "alice"}]})
    status, out, err = await finish(by_meeting)

    records = await driver.values("recordings", key=meeting_id)
    uploaded = records[-1]
    assert uploaded["status"] == "UPLOADED"
    assert status == 0, err
    assert out == uploaded["download_url"] + "\n"
    recording_id = uploaded["recording_id"]
    assert [line for line in err.splitlines() if line.startswith(recording_id)] == [
        f"{recording_id}: None -> INVOKED",
        f"{recording_id}: INVOKED -> RECORDING",
        f"{recording_id}: RECORDING -> UPLOADING",
        f"{recording_id}: UPLOADING -> UPLOADED",
    ]

    # Started afterwards, by recording id: it finds the finished recording from the start.
    status, out, err = await finish(await run_example(bootstrap, recording_id, 60))
    assert status == 0, err
    assert out == uploaded["download_url"] + "\n"

    # A recording that never comes: it gives up after its timeout.
    status, out, err = await finish(await run_example(bootstrap, "no-such-recording", 1.5))
    assert (status, out) == (3, "")
    assert "no UPLOADED for no-such-recording" in err


def test_the_docs_show_the_example_as_it_is() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
    assert "examples/follow_recording.py" in docs
