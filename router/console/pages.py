"""The console's HTML: the recent meetings with a search, one meeting's story, and not-found.

Every value that comes from a topic passes through `_h` (HTML-escaped, quotes included) on its
way into the page, and links are built from quoted ids: a meeting titled `<script>` is text.
The part of a page that follows the topics is `<main id="live">`; `console.js` fetches the
page again every few seconds and swaps that element when it changed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from router.console.view import MeetingView, Recording, Row

VERDICT_WORDS = {"recorded": "Recorded", "not_recorded": "Not recorded", "failed": "Failed"}
# A recording's status as a colour class: done, under way, or failed.
STATUS_CLASS = {
    "UPLOADED": "good",
    "INVOKED": "busy",
    "RECORDING": "busy",
    "PAUSED": "busy",
    "UPLOADING": "busy",
    "ERRORED": "bad",
}
OUTCOME_CLASS = {
    "started": "good",
    "already_recording": "good",
    "stopped": "quiet",
    "not_recording": "quiet",
    "shadow": "busy",
    "no_match": "quiet",
    "skipped": "quiet",
    "failed": "bad",
}


def _h(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def meeting_url(meeting_id: str) -> str:
    """The page of a meeting (the id quoted whole: a `/` or `?` in it stays in it)."""
    return "/meetings/" + quote(meeting_id, safe="")


@dataclass(frozen=True)
class Frame:
    """What every page has around its content: how often its live part is fetched again."""

    refresh_ms: int


def _layout(title: str, body: str, frame: Frame, *, query: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_h(title)} · rtk-router</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<header class="bar">
  <a class="brand" href="/">rtk-router <span>console</span></a>
  <form class="search" method="get" action="/" role="search">
    <input type="search" name="q" id="q" value="{_h(query)}" placeholder="Meeting id"
      aria-label="Meeting id" autocomplete="off" spellcheck="false">
    <button type="submit">Show</button>
  </form>
  <span class="pulse" id="pulse" title="following the topics">live</span>
</header>
<main id="live" data-refresh-ms="{frame.refresh_ms}">
{body}
</main>
</body>
</html>
"""


def verdict_badge(verdict: str) -> str:
    """A verdict as a coloured word."""
    word = VERDICT_WORDS.get(verdict, verdict)
    return f'<span class="badge verdict-{_h(verdict)}">{_h(word)}</span>'


def index_page(meetings: Iterable[MeetingView], frame: Frame) -> str:
    """`GET /`: the recent meetings, the most recently active first."""
    rows = "\n".join(_meeting_row(m) for m in meetings)
    table = (
        '<table class="meetings"><thead><tr><th>Meeting</th><th>Id</th>'
        '<th class="num">Present</th><th>Recording</th><th>Last seen (UTC)</th></tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table>"
        if rows
        else '<p class="empty">No meetings seen on the meetings topic yet.</p>'
    )
    body = f"<h1>Recent meetings</h1>\n{table}"
    return _layout("Recent meetings", body, frame)


def _meeting_row(meeting: MeetingView) -> str:
    title = _h(meeting.title) if meeting.title else '<span class="muted">(no title)</span>'
    present = "" if meeting.present is None else _h(meeting.present)
    href = _h(meeting_url(meeting.meeting_id))
    return (
        f'<tr data-meeting="{_h(meeting.meeting_id)}"><td class="title">'
        f'<a href="{href}">{title}</a></td>'
        f'<td><code>{_h(meeting.meeting_id)}</code></td><td class="num">{present}</td>'
        f"<td>{verdict_badge(meeting.verdict)}</td>"
        f'<td class="time">{_h(_short(meeting.last_time))}</td></tr>'
    )


def meeting_page(meeting: MeetingView, frame: Frame) -> str:
    """`GET /meetings/{id}`: the verdict, the recordings and the timeline of one meeting."""
    title = meeting.title or meeting.meeting_id
    present = "" if meeting.present is None else f" · {_h(meeting.present)} present"
    if meeting.app is not None:
        present += f' · app <code id="meeting-app">{_h(meeting.app)}</code>'
    recordings = "\n".join(_recording(r) for r in meeting.recordings)
    timeline = "\n".join(_timeline(meeting.rows))
    truncated = (
        '<p class="note">The oldest records of this meeting are no longer kept here; '
        "<code>router why</code> tells the whole story.</p>"
        if meeting.truncated
        else ""
    )
    body = f"""<p class="crumbs"><a href="/">Recent meetings</a></p>
<h1 class="meeting-title">{_h(title)}</h1>
<p class="ids"><code id="meeting-id">{_h(meeting.meeting_id)}</code>{present}</p>
<section class="verdict verdict-{_h(meeting.verdict)}" id="verdict">
  {verdict_badge(meeting.verdict)}
  <span class="detail">{_h(meeting.verdict_detail)}</span>
</section>
{_section("Recordings", f'<ul class="recordings">{recordings}</ul>') if recordings else ""}
<section>
<h2>Timeline <span class="muted">UTC</span></h2>
{truncated}
<ol class="timeline" id="timeline">
{timeline}
</ol>
</section>"""
    return _layout(title, body, frame, query=meeting.meeting_id)


def _section(heading: str, inner: str) -> str:
    return f"<section><h2>{_h(heading)}</h2>{inner}</section>"


def _recording(recording: Recording) -> str:
    tone = STATUS_CLASS.get(recording.status, "quiet")
    name = f' <span class="muted">{_h(recording.file_name)}</span>' if recording.file_name else ""
    link = (
        f'<a class="download" href="{_h(recording.download_url)}" rel="noopener noreferrer">'
        f"Download</a>{name}"
        if recording.download_url
        else '<span class="muted">no file yet</span>'
    )
    return (
        f'<li class="recording"><span class="badge tone-{tone}">{_h(recording.status)}</span> '
        f"<code>{_h(recording.recording_id)}</code> {link} "
        f'<span class="muted time">{_h(_short(recording.updated))}</span></li>'
    )


def _timeline(rows: Iterable[Row]) -> Iterable[str]:
    """The rows, with the date above the first row of each day (a row shows only its time)."""
    day = ""
    for row in rows:
        if row.time[:10] != day:
            day = row.time[:10]
            yield f'<li class="day">{_h(day)}</li>'
        yield _row(row)


def _row(row: Row) -> str:
    tone = ""
    if row.outcome is not None:
        tone = OUTCOME_CLASS.get(row.outcome, "quiet")
    elif row.status is not None:
        tone = STATUS_CLASS.get(row.status, "quiet")
    elif row.kind in ("dead-letter", "malformed"):
        tone = "bad"
    explanation = ""
    if row.explanation:
        items = "".join(
            f'<li class="{"matched" if e.matched else "unmatched"}">'
            f'<span class="mark">{"✓" if e.matched else "✗"}</span> '
            f"<code>{_h(e.rule)}</code> {_h(e.why)}</li>"
            for e in row.explanation
        )
        explanation = f'<ul class="explanation">{items}</ul>'
    return (
        f'<li class="entry kind-{_h(row.kind.replace(".", "-"))} tone-{tone or "plain"}">'
        f'<time datetime="{_h(row.time)}" title="{_h(row.time)}">{_h(_clock(row.time))}</time>'
        f'<span class="kind">{_h(row.kind)}</span>'
        f'<div class="what"><p class="summary">{_h(row.summary)}</p>{explanation}</div></li>'
    )


def not_found_page(meeting_id: str, frame: Frame) -> str:
    """A meeting nothing is known of."""
    body = (
        '<p class="crumbs"><a href="/">Recent meetings</a></p><h1>Unknown meeting</h1>'
        f'<p class="empty">Nothing is known of meeting <code>{_h(meeting_id)}</code> on the '
        "topics. Meeting ids are exact; check the id, or whether the meeting is older than "
        "the topics' retention.</p>"
    )
    return _layout("Unknown meeting", body, frame, query=meeting_id)


def unavailable_page(meeting_id: str, reason: str, frame: Frame) -> str:
    """A meeting not followed yet, while the broker cannot be read (the page retries)."""
    body = (
        '<p class="crumbs"><a href="/">Recent meetings</a></p><h1>Topics unavailable</h1>'
        f'<p class="empty">Meeting <code>{_h(meeting_id)}</code> cannot be looked up: '
        f"{_h(reason)}. This page tries again on its own.</p>"
    )
    return _layout("Topics unavailable", body, frame, query=meeting_id)


def _short(time: str | None) -> str:
    """`2026-06-03T10:05:01.250Z` as `2026-06-03 10:05:01`."""
    return "" if not time else time[:19].replace("T", " ")


def _clock(time: str) -> str:
    """`2026-06-03T10:05:01.250Z` as `10:05:01` (the full time is in the title)."""
    return time[11:19] if len(time) >= 19 else time
