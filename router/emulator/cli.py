"""`router emulate`: serve the RTK emulator in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from router.core.signature import load_private_key
from router.emulator.app import RunningEmulator, running_emulator
from router.emulator.config import DropSpec, EmulatorConfig, Seed, load_seed
from router.errors import UsageError

_DEFAULTS = EmulatorConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `router emulate`."""
    parser.add_argument(
        "--port", type=int, default=8787, help="port to listen on, 0: any free (default: 8787)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--webhook-url",
        default=None,
        help="where to POST signed webhooks (default: none; settable at run time)",
    )
    parser.add_argument(
        "--seed",
        type=Path,
        default=None,
        help="YAML or JSON file: participants per meeting, meetings to play once the "
        "webhook URL answers "
        "(default: none)",
    )
    parser.add_argument(
        "--key",
        type=Path,
        default=None,
        help="PEM private key to sign with (default: a fresh pair)",
    )
    parser.add_argument(
        "--token", default=_DEFAULTS.api_token, help="API token to accept (default: %(default)s)"
    )
    parser.add_argument(
        "--account-id", default=_DEFAULTS.account_id, help="account id (default: %(default)s)"
    )
    parser.add_argument("--app-id", default=_DEFAULTS.app_id, help="app id (default: %(default)s)")
    parser.add_argument(
        "--more-app",
        action="append",
        default=[],
        metavar="APP_ID=TOKEN",
        help="serve another app beside --app-id, with its own token (repeatable; default: none)",
    )
    parser.add_argument(
        "--escape-public-key",
        action="store_true",
        help="serve the public key with literal \\n escapes, as RTK has been seen to "
        "(default: off)",
    )
    parser.add_argument(
        "--start-delay",
        type=float,
        default=_DEFAULTS.start_delay,
        help="seconds INVOKED -> RECORDING (default: %(default)s)",
    )
    parser.add_argument(
        "--upload-delay",
        type=float,
        default=_DEFAULTS.upload_delay,
        help="seconds UPLOADING -> UPLOADED (default: %(default)s)",
    )
    parser.add_argument(
        "--drop-webhooks",
        metavar="EVENT[,EVENT]",
        default=None,
        help="lose every webhook delivery of these event types (e.g. "
        "meeting.participantJoined), as RTK does once it gives up; 'all' for any type",
    )
    parser.add_argument(
        "--drop-probability",
        type=float,
        default=1.0,
        help="with --drop-webhooks: lose each matching delivery with this chance (0 < P <= 1)",
    )
    parser.add_argument(
        "--idle-stop-seconds",
        type=float,
        default=_DEFAULTS.idle_stop_seconds,
        help="stop a meeting's recordings once it has been empty this long, 0: never "
        "(default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop. A bad option, seed or key, or an
    address it cannot listen on, is a `UsageError` (exit 2)."""
    try:
        config = _config(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return asyncio.run(_serve(config, args.host, args.port))


def _config(args: argparse.Namespace) -> EmulatorConfig:
    seed = load_seed(args.seed) if args.seed is not None else Seed()
    if args.drop_webhooks is not None:
        seed = seed.model_copy(update={"drops": [*seed.drops, _drop_of(args)]})
    key = None
    if args.key is not None:
        try:
            key = args.key.read_bytes()
            load_private_key(key)
        except OSError as exc:
            raise ValueError(f"{args.key}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot use {args.key} as an RSA private key: {exc}") from None
    more_apps = {}
    for given in args.more_app:
        app_id, equals, token = given.partition("=")
        if not equals or not app_id or not token:
            raise ValueError(f"--more-app {given!r}: give APP_ID=TOKEN")
        more_apps[app_id] = token
    return EmulatorConfig(
        account_id=args.account_id,
        app_id=args.app_id,
        more_apps=more_apps,
        api_token=args.token,
        webhook_url=args.webhook_url,
        private_key_pem=key,
        escape_public_key=args.escape_public_key,
        start_delay=args.start_delay,
        upload_delay=args.upload_delay,
        idle_stop_seconds=args.idle_stop_seconds or None,
        seed=seed,
    )


def _drop_of(args: argparse.Namespace) -> DropSpec:
    events = [e.strip() for e in args.drop_webhooks.split(",") if e.strip()]
    try:
        return DropSpec(
            events=None if events == ["all"] else events, probability=args.drop_probability
        )
    except ValidationError:
        msg = f"--drop-probability must be above 0 and at most 1, not {args.drop_probability:g}"
        raise ValueError(msg) from None


async def _serve(config: EmulatorConfig, host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_emulator(config, host=host, port=port) as emulator:
            _announce(emulator)
            await stop.wait()
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    sys.stdout.write("emulator stopped\n")
    return 0


def _announce(emulator: RunningEmulator) -> None:
    c = emulator.config
    lines = [
        f"RTK emulator listening on {emulator.base_url}",
        f"  realtimekit.api_base_url: {emulator.base_url}",
        f"  realtimekit.account_id:   {c.account_id}",
        f"  realtimekit.app_id:       {c.app_id}",
        f"  realtimekit.api_token:    {c.api_token}",
        f"  public_key_url:           {emulator.public_key_url}",
        f"  webhooks to:              {c.webhook_url or '(none; PUT /_emulator/webhooks/url)'}",
        f"  control API:              {emulator.control_url}",
        "Ctrl-C stops it.",
    ]
    # Flushed at once: whoever started the emulator waits for these lines to use it.
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
