"""The least a correct receiver does: an aiohttp server whose one handler reads the body,
verifies its `rtk-signature` (RSA PKCS#1 v1.5, SHA-256, base64) against the run's public key,
parses the JSON, appends the body to a Kafka topic keyed by its meeting id and waits for the
broker's acknowledgement (acks=all), then answers 200.

It runs in its own process on the router's event loop, like the bare server, so that
`receiver / verifying` shows what the router's receiver costs on top of the work any
receiver must do. Usage: `python bench/verifying_server.py --port N --public-key PEM
--bootstrap HOST:PORT --topic T [--loop asyncio|uvloop]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import signal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_ANSWER = b'{"status":"accepted"}'


class _Handler:
    def __init__(self, key: rsa.RSAPublicKey, producer: Any, topic: str) -> None:
        self._key = key
        self._producer = producer
        self._topic = topic

    async def accept(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            signature = base64.b64decode(request.headers.get("rtk-signature", ""), validate=True)
            self._key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature):
            return web.json_response({"error": "invalid_signature"}, status=401)
        try:
            payload = json.loads(body)
            meeting = payload["meeting"]["id"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "invalid_payload"}, status=400)
        try:
            await self._producer.send_and_wait(self._topic, body, key=str(meeting).encode())
        except KafkaError:
            return web.json_response({"error": "unavailable"}, status=503)
        return web.Response(body=_ANSWER, content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _serve(port: int, public_key: Path, bootstrap: str, topic: str) -> None:
    key = serialization.load_pem_public_key(public_key.read_bytes())
    assert isinstance(key, rsa.RSAPublicKey)
    # acks=all as the router asks; the embedded broker refuses idempotent producers.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    app = web.Application()
    app.router.add_post("/webhooks/realtimekit", _Handler(key, producer, topic).accept)
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
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-key", type=Path, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    serve = _serve(args.port, args.public_key, args.bootstrap, args.topic)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve)
    else:
        asyncio.run(serve)


if __name__ == "__main__":
    main()
