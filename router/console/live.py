"""The console's memory of the topics, kept current: a task follows the meetings, decisions,
recordings and dead-letter topics into a `MeetingMemory`, and a meeting's view is its story
built from the records remembered, after its partition has been read whole once (the live
reader starts only a little before the end, so a meeting's beginning may lie further back).

When the broker goes away the task retries with backoff and resumes where it stopped; the page
keeps showing what it has meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from router.backoff import Backoff
from router.config import Settings
from router.console.view import MeetingView, meeting_view
from router.core.meeting_memory import MeetingMemory, MeetingRecords
from router.core.story import TOPICS, Story, build_story
from router.errors import DependencyError
from router.kafka import BROKER_ERRORS, Consumed
from router.kafka.follower import Position, TopicsFollower
from router.story import of_app, read_records, story_record

log = logging.getLogger("router.console")

FETCH_WAIT_SECONDS = 0.5
ABSENT_KEPT = 1000
RETRY = Backoff(base=0.5, cap=10.0, jitter=True)
# What the following task waits out: a broker away, or a topic deleted and not yet back.
RETRIED: tuple[type[BaseException], ...] = (LookupError, *BROKER_ERRORS)


class LiveTopics:
    """What the console knows of the topics, and the task that keeps it current."""

    def __init__(self, settings: Settings, bootstrap: str, *, app: str | None = None) -> None:
        self._settings = settings
        self._app = app  # (`--app`: that app's records only)
        self.bootstrap = bootstrap
        # The story names the four topics as the configuration does ("dead_letter").
        self._names = {getattr(settings.kafka.topics, name): name for name in TOPICS}
        self.topics = tuple(self._names)
        console = settings.console
        self.memory = MeetingMemory(
            meetings_topic="meetings",
            max_meetings=console.max_meetings,
            max_records=console.max_records_per_meeting,
            max_total=console.max_records,
        )
        self._positions: dict[Position, int] = {}
        self._stories: dict[str, tuple[int, Story, MeetingView]] = {}
        self._reads: dict[str, asyncio.Future[None]] = {}
        # Ids asked for and found nowhere, so that an open "unknown meeting" page refreshing
        # itself does not read partitions again every time (oldest forgotten first).
        self._absent: dict[str, None] = {}

    def follower(self) -> TopicsFollower:
        """A reader of the four topics, resuming where the last one stopped."""
        return TopicsFollower(
            self._settings.kafka,
            self.bootstrap,
            self.topics,
            history=self._settings.console.history_per_partition,
            resume=self._positions,
        )

    async def follow(self, first: TopicsFollower) -> None:
        """Keep the memory current until cancelled, starting with an opened follower."""
        follower: TopicsFollower | None = first
        failures = 0
        while True:
            try:
                if follower is None:
                    follower = await self.follower().__aenter__()
                try:
                    while True:
                        self.take(await follower.fetch(FETCH_WAIT_SECONDS))
                        failures = 0
                finally:
                    await follower.__aexit__(None, None, None)
                    follower = None
            except RETRIED as exc:
                failures += 1
                delay = RETRY.delay(failures)
                log.warning("console: reading the topics failed (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def take(self, messages: list[Consumed]) -> None:
        """Remember a batch of messages (those without a meeting id as key are not a story's)."""
        for message in messages:
            self._positions[(message.topic, message.partition)] = message.offset + 1
            if message.key:
                record = story_record(self._names[message.topic], message)
                if of_app([record], self._app):
                    self.memory.add(record.key or "", record)

    async def meeting(self, meeting_id: str) -> MeetingView | None:
        """A meeting's view, its partition read whole the first time; None if nothing is known.
        Raises DependencyError when the broker cannot be read and nothing was followed of it."""
        meeting = self.memory.get(meeting_id)
        if meeting is None and meeting_id in self._absent:
            return None  # (read whole and not there: anything later comes through `follow`)
        if meeting is None or not meeting.read_whole:
            try:
                await self._read_whole(meeting_id)
            except RETRIED as exc:
                if meeting is None:
                    raise DependencyError(f"cannot read the topics right now: {exc}") from None
                # (what was followed is shown meanwhile; the whole read is tried next time)
                log.warning("console: reading meeting %s whole failed: %s", meeting_id, exc)
            meeting = self.memory.get(meeting_id)
        if meeting is None or not meeting.records:
            self._absent[meeting_id] = None
            if len(self._absent) > ABSENT_KEPT:
                del self._absent[next(iter(self._absent))]
            return None
        return self.view(meeting)

    async def _read_whole(self, meeting_id: str) -> None:
        # Several pages asking for one meeting at once share one read of its partition.
        pending = self._reads.get(meeting_id)
        if pending is None:
            pending = self._reads[meeting_id] = asyncio.ensure_future(self._read(meeting_id))
            pending.add_done_callback(lambda _: self._reads.pop(meeting_id, None))
            # (its failure is raised to whoever awaits it; none may be left to)
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(pending)

    async def _read(self, meeting_id: str) -> None:
        records = of_app(await read_records(self._settings.kafka, meeting_id), self._app)
        # (the partition holds other meetings' records too)
        self.memory.add_whole(meeting_id, (r for r in records if r.key == meeting_id))

    def recent(self, limit: int) -> Iterator[MeetingView]:
        """The views of up to `limit` recent meetings, from memory alone."""
        for meeting in self.memory.recent(limit):
            yield self.view(meeting)

    def view(self, meeting: MeetingRecords) -> MeetingView:
        """A remembered meeting's view."""
        return self._built(meeting)[1]

    def story_json(self, meeting_id: str) -> dict[str, object] | None:
        """The `--json` story of a remembered meeting (SPEC 9.3 `/api/meetings/{id}`)."""
        meeting = self.memory.get(meeting_id)
        if meeting is None or not meeting.records:
            return None
        return self._built(meeting)[0].to_json()

    def _built(self, meeting: MeetingRecords) -> tuple[Story, MeetingView]:
        """A meeting's story and view, built again only when a record was added since."""
        cached = self._stories.get(meeting.meeting_id)
        if cached is not None and cached[0] == meeting.version:
            return cached[1], cached[2]
        story = build_story(meeting.meeting_id, meeting.records.values())
        view = meeting_view(story, truncated=meeting.truncated)
        self._stories[meeting.meeting_id] = (meeting.version, story, view)
        if len(self._stories) > 2 * len(self.memory) + 100:  # (forgotten meetings' stories)
            self._stories = {
                key: value for key, value in self._stories.items() if self.memory.get(key)
            }
        return story, view
