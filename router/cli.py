"""The `router` command: serve, check-config, explain, send, tail, why, keygen, broker,
emulate."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from router import __version__
from router.errors import ConfigError, DependencyError

DEFAULT_CONFIG = "config.yaml"


def _config_path(value: str | None) -> str:
    return value or os.environ.get("ROUTER_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="router",
        description="Receive RealtimeKit webhooks onto Kafka, start recordings by policy, "
        "and publish recording, meeting and decision topics.",
    )
    parser.add_argument("--version", action="version", version=f"rtk-router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "configuration file (default: $ROUTER_CONFIG, then ./config.yaml)"

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--config", help=config_help)
    serve.add_argument(
        "--role",
        choices=["all", "receiver", "worker"],
        default="all",
        help="receiver (HTTP to Kafka), worker (Kafka to RTK and topics), or both",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="also trust the local key pair under .router/ (never in production)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serving processes sharing the port (SO_REUSEPORT), one consumer group",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", help=config_help)

    explain = commands.add_parser("explain", help="show the policy decision for one event")
    explain.add_argument("--config", help=config_help)
    explain.add_argument("event", type=Path, help="an RTK webhook body (JSON file)")
    explain.add_argument(
        "--participants",
        type=int,
        default=None,
        help="peers present after the event (default: 1 on a join, 0 on a leave)",
    )
    explain.add_argument(
        "--preset", default=None, help="the participant's preset, if a rule reads it"
    )
    explain.add_argument(
        "--recording",
        default="none",
        help="status of the recording known to be active (default: none)",
    )

    send = commands.add_parser("send", help="send a correctly signed webhook")
    send.add_argument("event", help="a JSON file, or an RTK event name for a sample payload")
    send.add_argument("--url", required=True, help="the router's source URL")
    send.add_argument(
        "--key",
        type=Path,
        default=None,
        help="RSA private key PEM (default: the dev key under .router/)",
    )
    send.add_argument(
        "--hmac-secret",
        default=None,
        help="sign for an `hmac` source with this secret instead of RSA",
    )

    tail = commands.add_parser("tail", help="print the messages of a topic as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--config", help=config_help)
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    tail.add_argument("--limit", type=int, default=None, help="stop after this many messages")
    tail.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        help="stop after this many seconds without a message",
    )

    why = commands.add_parser(
        "why", help="tell a meeting's story from the topics and whether it was recorded"
    )
    why.add_argument("meeting_id", metavar="MEETING_ID")
    why.add_argument("--config", help=config_help)
    why.add_argument("--json", action="store_true", help="one JSON object per line")

    keygen = commands.add_parser("keygen", help="write an RSA-2048 key pair for local signing")
    keygen.add_argument("directory", type=Path)

    broker = commands.add_parser("broker", help="run the embedded Kafka-compatible broker alone")
    broker.add_argument("--port", type=int, default=9092)
    broker.add_argument("--host", default="127.0.0.1")

    console = commands.add_parser("console", help="serve the read-only web page for people")
    console.add_argument("--config", help=config_help)
    console.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=8081, help="listen port (default 8081)")
    console.add_argument(
        "--no-auth",
        action="store_true",
        help="ask for no credentials (only with a loopback --host)",
    )

    # The emulator's own parser reads its options (`router emulate --help` shows them), so
    # that the other commands do not import the emulator and its web server to start.
    commands.add_parser("emulate", help="run the RealtimeKit API emulator", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `router` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "emulate":
        args.options = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _dispatch(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except DependencyError as exc:  # (an expected failure: one line, never a traceback)
        print(f"router: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        print(f"router: {exc}", file=sys.stderr)  # (names the address and the reason)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from router import commands

    handler = getattr(commands, args.command.replace("-", "_"))
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
