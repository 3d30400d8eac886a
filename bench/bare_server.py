"""The baseline: an aiohttp server whose one handler reads the body and answers 200.

It runs in its own process, like the router, on the same event loop implementation the
router uses, so that `router / bare` shows what the router's own work costs on top of
aiohttp. Usage: `python bench/bare_server.py --port N [--loop asyncio|uvloop]`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

_ANSWER = b'{"status":"accepted"}'


async def _accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=_ANSWER, content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/webhooks/realtimekit", _accept)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_serve(args.port))
    else:
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
