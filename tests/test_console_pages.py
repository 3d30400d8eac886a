"""The console's views and HTML from a story (pure): what a page shows of each kind of record,
and that nothing from a topic reaches the page unescaped or as a link it should not be."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router.console import pages
from router.console.view import meeting_view, safe_link
from router.core.story import StoryRecord, build_story

MEETING = "m-1"
FRAME = pages.Frame(refresh_ms=2000)


def record(topic: str, offset: int, value: dict[str, Any] | bytes) -> StoryRecord:
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return StoryRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=1_780_000_000_000 + offset,
        headers={},
        value=body,
        key=MEETING,
    )


def meeting_record(offset: int, title: str, present: int) -> StoryRecord:
    return record(
        "meetings",
        offset,
        {
            "type": "participant.joined",
            "meeting_id": MEETING,
            "session_id": "s-1",
            "title": title,
            "participants_present": present,
            "participant": None,
        },
    )


def decision(offset: int, outcome: str, **fields: Any) -> StoryRecord:
    value = {
        "type": "policy.decision",
        "meeting_id": MEETING,
        "trigger": "meeting.participantJoined",
        "outcome": outcome,
        "rule": None,
        "explanation": [
            {"rule": "big", "matched": False, "why": "session.participants 1 >= 3: no"},
        ],
        **fields,
    }
    return record("decisions", offset, value)


def recording(offset: int, status: str, url: str | None = None) -> StoryRecord:
    value = {
        "meeting_id": MEETING,
        "recording_id": "r-1",
        "status": status,
        "download_url": url,
        "output_file_name": "board.mp4" if url else None,
    }
    return record("recordings", offset, value)


def test_a_meeting_view_reads_title_count_explanations_and_recordings() -> None:
    story = build_story(
        MEETING,
        [
            meeting_record(0, "Board", 1),
            decision(1, "no_match"),
            meeting_record(2, "Board", 2),
            recording(3, "RECORDING"),
            recording(4, "UPLOADED", "https://files.example/board.mp4"),
        ],
    )
    view = meeting_view(story)
    assert (view.title, view.present) == ("Board", 2)
    [explained] = [row for row in view.rows if row.kind == "decision"]
    assert explained.outcome == "no_match"
    assert [(e.rule, e.matched, e.why) for e in explained.explanation] == [
        ("big", False, "session.participants 1 >= 3: no")
    ]
    assert "not matched" not in explained.summary  # (the explanation is listed instead)
    [file] = view.recordings
    assert (file.status, file.download_url, file.file_name) == (
        "UPLOADED",
        "https://files.example/board.mp4",
        "board.mp4",
    )


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://files.example/a.mp4", True),
        ("http://files.example/a.mp4", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//files.example/a.mp4", False),
        ("", False),
        (None, False),
    ],
    ids=[
        "https",
        "http",
        "javascript",
        "javascript-case",
        "data",
        "scheme-relative",
        "empty",
        "none",
    ],
)
def test_only_web_addresses_become_download_links(url: str | None, linked: bool) -> None:
    assert (safe_link(url) is not None) is linked
    story = build_story(MEETING, [meeting_record(0, "x", 1), recording(1, "UPLOADED", url)])
    page = pages.meeting_page(meeting_view(story), FRAME)
    assert ('class="download"' in page) is linked


def test_everything_from_a_topic_is_escaped() -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    story = build_story(
        MEETING,
        [
            meeting_record(0, hostile, 1),
            decision(
                1, "no_match", explanation=[{"rule": hostile, "matched": False, "why": hostile}]
            ),
            record("decisions", 2, b"<script>not json</script>"),
        ],
    )
    view = meeting_view(story)
    for page in (pages.meeting_page(view, FRAME), pages.index_page([view], FRAME)):
        assert "<script>alert" not in page
        assert "<img" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>not json" not in pages.meeting_page(view, FRAME)


@pytest.mark.parametrize(
    ("meeting_id", "path"),
    [
        ("m-1", "/meetings/m-1"),
        ("a/b?c#d", "/meetings/a%2Fb%3Fc%23d"),
        ('"><x', "/meetings/%22%3E%3Cx"),
    ],
    ids=["plain", "path-characters", "markup"],
)
def test_meeting_links_quote_the_whole_id(meeting_id: str, path: str) -> None:
    assert pages.meeting_url(meeting_id) == path
