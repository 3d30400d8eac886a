"""The worker: the fetch-commit loop (`loop`), the meeting states it keeps (`states`) and the
meetings waiting on RTK (`waiting`)."""

from router.worker.loop import Worker

__all__ = ["Worker"]
