"""Reading an HTTP answer from outside with a size limit, so that a broken or hostile server
(the key URL, RTK's API) cannot make the process hold an answer of any size in memory."""

from __future__ import annotations

import aiohttp

from router.errors import AnswerTooLarge

_CHUNK = 64 * 1024


async def read_limited(
    response: aiohttp.ClientResponse, limit: int, what: str, setting: str
) -> bytes:
    """The answer's body (decoded as sent, gzip undone), or `AnswerTooLarge` naming `setting`
    once more than `limit` bytes arrive; a declared length over the limit is refused unread."""
    if response.content_length is not None and response.content_length > limit:
        raise AnswerTooLarge(what, limit, setting)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(what, limit, setting)
        chunks.append(chunk)
    return b"".join(chunks)
