"""Distinct, correctly signed webhook bodies, made before any measurement starts.

Signing is the sender's cost (about 0.5 ms per RSA-2048 signature), so it is paid up front on
every core, and the load generators only replay bytes. Each body is a
`meeting.participantJoined` of its own meeting, shaped as RTK sends it; the meeting title
decides whether the benchmark policy starts a recording for it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from router.clock import rfc3339
from router.core.signature import load_private_key, rsa_sign
from router.samples import encode_payload, sample_payload

EVENT = "meeting.participantJoined"
_CHUNK = 500


@dataclass(frozen=True)
class Signed:
    """One body, its meeting and its `rtk-signature`."""

    meeting_id: str
    body: bytes
    signature: str


def join_body(meeting_id: str, title: str, now: dt.datetime) -> bytes:
    """The body of the first join of a new meeting titled `title`."""
    payload = sample_payload(EVENT, now=now, meeting_id=meeting_id, meeting={"title": title})
    return encode_payload(payload)


def make_bodies(count: int, title_prefix: str, now: dt.datetime) -> list[tuple[str, bytes]]:
    """`count` join bodies of distinct new meetings, titled `<prefix> <n>`."""
    out = []
    for n in range(count):
        meeting_id = str(uuid.uuid4())
        out.append((meeting_id, join_body(meeting_id, f"{title_prefix} {n}", now)))
    return out


def meeting_joins(
    meetings: int, joins_each: int, title_of: Callable[[int], str], now: dt.datetime
) -> list[tuple[str, bytes]]:
    """`joins_each` joins of distinct participants to each of `meetings` new meetings (meeting
    `n` titled `title_of(n)`, one session each), in rounds: every meeting's first join, then
    every meeting's second, and so on. Each meeting's joins keep their order on the log while
    the meetings interleave, as on a busy log."""
    ids = [str(uuid.uuid4()) for _ in range(meetings)]
    sessions = [str(uuid.uuid4()) for _ in range(meetings)]
    out = []
    for round_ in range(joins_each):
        joined = {"joinedAt": rfc3339(now + dt.timedelta(seconds=round_))}
        for n, meeting_id in enumerate(ids):
            payload = sample_payload(
                EVENT,
                now=now,
                meeting_id=meeting_id,
                session_id=sessions[n],
                meeting={"title": title_of(n)},
                participant=joined,
            )
            out.append((meeting_id, encode_payload(payload)))
    return out


def _sign_chunk(args: tuple[bytes, list[tuple[str, bytes]]]) -> list[Signed]:
    pem, chunk = args
    key = load_private_key(pem)
    return [Signed(m, body, rsa_sign(key, body)) for m, body in chunk]


def sign_all(private_pem: bytes, bodies: Sequence[tuple[str, bytes]]) -> list[Signed]:
    """Sign every body, spread over all cores (call before any thread or event loop starts)."""
    chunks = [(private_pem, list(bodies[i : i + _CHUNK])) for i in range(0, len(bodies), _CHUNK)]
    if len(chunks) <= 1:
        return [s for c in chunks for s in _sign_chunk(c)]
    workers = min(len(chunks), os.cpu_count() or 1)
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        signed = pool.map(_sign_chunk, chunks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return [s for chunk in signed for s in chunk]


def write_wrk_data(path: Path, signed: Iterable[Signed]) -> int:
    """One `signature<TAB>body` line per body, for the wrk script; returns the count.

    Compact JSON never holds a raw tab or newline, so neither needs escaping.
    """
    count = 0
    with path.open("wb") as out:
        for item in signed:
            if b"\t" in item.body or b"\n" in item.body:
                raise ValueError("a body holds a tab or newline; the wrk data format cannot")
            out.write(item.signature.encode("ascii") + b"\t" + item.body + b"\n")
            count += 1
    return count
