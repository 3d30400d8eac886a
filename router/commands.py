"""What each `router` subcommand does; `router.cli` only parses arguments and dispatches."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from router import logs
from router.cli import _config_path
from router.config import AppSettings, LoadedConfig, load_config
from router.errors import UsageError

log = logging.getLogger("router")


def _load(args: argparse.Namespace) -> LoadedConfig:
    loaded = load_config(_config_path(getattr(args, "config", None)))
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return loaded


def _app(loaded: LoadedConfig, name: str | None) -> AppSettings:
    """The app `--app NAME` names; without it, the only app there is."""
    apps = loaded.settings.app_settings()
    names = [app.name for app in apps if app.name is not None]
    if name is None:
        if len(apps) > 1:
            raise UsageError(f"the configuration has several apps: give --app ({', '.join(names)})")
        return apps[0]
    if not names:
        raise UsageError("--app is for a configuration with apps; this one has none")
    for app in apps:
        if app.name == name:
            return app
    raise UsageError(f"no app {name!r} in the configuration ({', '.join(names)})")


def serve(args: argparse.Namespace) -> int:
    """`router serve`: run until SIGTERM/SIGINT."""
    from router.service import config_file, run_loop, run_workers
    from router.service import serve as run

    level = args.log_level.upper()
    logs.configure(level)
    loaded = _load(args)
    path = config_file(loaded.path)
    if args.workers > 1:
        return run_workers(
            path,
            loaded.settings,
            role=args.role,
            dev=args.dev,
            workers=args.workers,
            log_level=level,
        )
    run_loop(run(loaded.settings, role=args.role, dev=args.dev, config_path=path))
    return 0


def check_config(args: argparse.Namespace) -> int:
    """`router check-config`: exit 0 when valid, 2 with one line per problem otherwise."""
    loaded = _load(args)
    print(f"{loaded.path}: ok")
    return 0


def explain(args: argparse.Namespace) -> int:
    """`router explain`: the decision for one event, and why every rule did or did not match."""
    from router.explain import explain_event

    loaded = _load(args)
    print(
        explain_event(
            _app(loaded, args.app).policy,
            args.event.read_bytes(),
            participants=args.participants,
            preset=args.preset,
            recording=args.recording,
        )
    )
    return 0


def send(args: argparse.Namespace) -> int:
    """`router send`: POST a correctly signed webhook and print the answer."""
    import aiohttp

    from router.sending import build_delivery, post_delivery

    body, headers = build_delivery(args.event, key_path=args.key, hmac_secret=args.hmac_secret)
    try:
        status, text = asyncio.run(post_delivery(args.url, body, headers))
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        print(f"router: cannot deliver to {args.url}: {reason}", file=sys.stderr)
        return 1
    print(status)
    print(text)
    return 0 if 200 <= status < 300 else 1


def tail(args: argparse.Namespace) -> int:
    """`router tail`: print a topic's messages, one JSON line each."""
    from router.tailing import tail_topic

    logs.configure("WARNING", json_lines=False)
    settings = _load(args).settings
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                tail_topic(
                    settings.kafka,
                    args.topic,
                    from_beginning=args.from_beginning,
                    limit=args.limit,
                    idle_exit=args.idle_exit,
                    out=sys.stdout,
                )
            )
    except LookupError as exc:  # (the topic does not exist)
        print(f"router: {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


def backtest(args: argparse.Namespace) -> int:
    """`router backtest`: the candidate policy over the webhooks log, against the decisions."""
    from router.backtest import backtest as replay
    from router.core.policy import Policy
    from router.core.timeparse import parse_rfc3339
    from router.kafka import BROKER_ERRORS, reader_bootstrap
    from router.service import GC_THRESHOLDS

    bounds = []
    for flag, value in (("--from", args.since), ("--until", args.until)):
        instant = None if value is None else parse_rfc3339(value)
        if value is not None and instant is None:
            print(
                f"router: {flag} {value!r} is not an RFC 3339 time "
                "(for example 2026-06-01T08:00:00Z)",
                file=sys.stderr,
            )
            return 2
        bounds.append(instant)
    loaded = _load(args)
    settings = loaded.settings
    app = _app(loaded, args.app).name if args.app is not None else None
    # The replay's dead-letter copies are counted in the report, not logged; a broker that
    # cannot be reached is the one line below, not aiokafka's own as well.
    logging.getLogger("router.processing").setLevel(logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # The worker's collector settings: the replay allocates as the worker does.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        comparison = replay(settings, since=bounds[0], until=bounds[1], app=app)
    except LookupError as exc:  # (a topic does not exist)
        print(f"router: {exc.args[0]}", file=sys.stderr)
        return 1
    except BROKER_ERRORS as exc:
        where = reader_bootstrap(settings.kafka)
        print(f"router: cannot read the topics from {where}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(dump_json(comparison.as_json()))
        if comparison.malformed:
            count, topic = comparison.malformed, settings.kafka.topics.webhooks
            first = comparison.malformed_shown[0]
            plural = "record" if count == 1 else "records"
            print(
                f"warning: {count} malformed {plural} on {topic}, not decided: {first}",
                file=sys.stderr,
            )
        return 0
    policy = Policy.from_config(settings.policy)
    window = f" from {args.since or 'the start'} until {args.until or 'the end'}"
    heading = (
        f"backtest of {args.config} (policy {policy.version}, {settings.policy.mode}) over "
        f"{settings.kafka.topics.webhooks}{window if args.since or args.until else ''}, "
        f"against {settings.kafka.topics.decisions}"
    )
    print("\n".join(comparison.lines(heading)))
    return 0


def why(args: argparse.Namespace) -> int:
    """`router why`: a meeting's story from the topics, then its verdict."""
    from router.kafka import BROKER_ERRORS, reader_bootstrap
    from router.story import read_story

    # Only the story on stdout, and a failure as the one line below (not aiokafka's own).
    logs.configure("CRITICAL", json_lines=False)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    loaded = _load(args)
    kafka = loaded.settings.kafka
    app = _app(loaded, args.app).name if args.app is not None else None
    try:
        story = asyncio.run(read_story(kafka, args.meeting_id, app=app))
    except LookupError as exc:  # (a topic does not exist)
        print(f"router: {exc.args[0]}", file=sys.stderr)
        return 1
    except BROKER_ERRORS as exc:
        where = reader_bootstrap(kafka)
        print(
            f"router: cannot read from the broker at {where}: {type(exc).__name__}", file=sys.stderr
        )
        return 1
    if story.verdict is None:
        print(f"router: nothing is known of meeting {args.meeting_id!r}", file=sys.stderr)
        return 1
    if args.json:
        for entry in story.entries:
            print(dump_json(entry.to_json()))
        print(dump_json(story.verdict.to_json()))
    else:
        print("\n".join(story.lines()))
    return 0


def keygen(args: argparse.Namespace) -> int:
    """`router keygen DIR`: write `private.pem` and `public.pem`."""
    from router.devkeys import write_key_pair

    directory: Path = args.directory
    if (directory / "private.pem").exists():
        raise UsageError(f"{directory / 'private.pem'} exists; not overwriting it")
    private, public = write_key_pair(directory)
    print(f"wrote {private} and {public}")
    return 0


def broker(args: argparse.Namespace) -> int:
    """`router broker`: the embedded broker alone, in the foreground."""
    from router.broker import EmbeddedBroker

    logs.configure("INFO")

    async def run() -> int:
        embedded = EmbeddedBroker(host=args.host, port=args.port)
        await embedded.start()
        # SIGTERM as well as Ctrl-C stops the broker process before we exit (it runs in a
        # session of its own, so nothing else would).
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print(f"broker listening on {embedded.bootstrap_servers}; Ctrl-C stops it", flush=True)
        exited = asyncio.ensure_future(embedded.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            return exited.result() if exited.done() else 0
        finally:
            stopping.cancel()
            exited.cancel()
            await embedded.stop()

    code = 0
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        code = asyncio.run(run())
    return code


def console(args: argparse.Namespace) -> int:
    """`router console`: the read-only web page, until SIGTERM/SIGINT."""
    from router.console.app import refusal, run_console

    logs.configure("INFO")
    loaded = _load(args)
    settings = loaded.settings
    app = _app(loaded, args.app).name if args.app is not None else None
    refused = refusal(settings.console, host=args.host, no_auth=args.no_auth)
    if refused:
        print(f"router: {refused}", file=sys.stderr)
        return 2
    run_console(settings, host=args.host, port=args.port, require_auth=not args.no_auth, app=app)
    return 0


def emulate(args: argparse.Namespace) -> int:
    """`router emulate`: the RealtimeKit API emulator."""
    from router.emulator.cli import add_arguments, run

    parser = argparse.ArgumentParser(
        prog="router emulate", description="Run the RealtimeKit API emulator."
    )
    add_arguments(parser)
    options = parser.parse_args(args.options)
    logs.configure("INFO")
    return run(options)


def dump_json(value: Any) -> str:
    """Compact JSON for lines printed by the CLI."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
