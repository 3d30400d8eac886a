"""Takes the README's screenshot of `router console` (docs/console.png).

It runs the browser test of a recorded meeting, which plays meetings through a real router, the
RTK emulator and the embedded broker, opens the console in headless Chromium and saves the
page; asked through `CONSOLE_SCREENSHOT_DIR`, it leaves a copy here. Run from the repository:

    .venv/bin/python scripts/console_screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/test_console_browser.py::test_the_recorded_meeting_and_the_readme_screenshots"


def main() -> int:
    """Run the test with the screenshot asked for; copy the meeting page into docs/."""
    docs = REPO / "docs"
    docs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as shots:
        env = {**os.environ, "CONSOLE_SCREENSHOT_DIR": shots, "CI": "1"}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
        code = subprocess.call(command, cwd=REPO, env=env)  # noqa: S603 - our own test, run by us
        if code != 0:
            return code
        (docs / "console.png").write_bytes((Path(shots) / "console.png").read_bytes())
    sys.stdout.write(f"wrote {docs / 'console.png'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
