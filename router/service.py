"""Running the app as a process: listen, wait for SIGTERM/SIGINT, drain, shut down in order."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from router.app import Role, create_app
from router.config import Settings

log = logging.getLogger("router.service")


async def serve(
    settings: Settings,
    *,
    role: Role,
    dev_keys: Sequence[rsa.RSAPublicKey] = (),
    reuse_port: bool = False,
) -> None:
    """Serve until a termination signal; then stop accepting, finish in-flight requests,
    stop the worker, flush the producer and stop the embedded broker."""
    app = create_app(settings, role=role, dev_keys=dev_keys)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.server.shutdown_grace_seconds,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(
            runner, settings.server.host, settings.server.port, reuse_port=reuse_port or None
        )
        await site.start()
        log.info(
            "listening",
            extra={"host": settings.server.host, "port": settings.server.port, "role": role},
        )
        await stop.wait()
        log.info("shutting down: draining requests")
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")
