"""The `router` command: serve, check-config, explain, send, tail, why, backtest, console,
keygen, broker, emulate.

Every expected failure of every command ends in one line on stderr, `router: ...`, and an exit
code: 2 for usage and configuration (a bad option, a configuration problem, a file that cannot
be read or used, a port already taken), 1 at run time (a broker, URL or API that fails or
cannot be reached). `main` maps them all (`failure_of`), so a new subcommand gets it for free;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from router import __version__
from router.errors import ConfigError, DependencyError, UsageError

DEFAULT_CONFIG = "config.yaml"
EXIT_RUNTIME = 1
EXIT_USAGE = 2
# An address that cannot be listened on is the configuration's (or the command's) to change.
_ADDRESS_ERRNOS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line (and `--help` pointed to)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"router: {message} (see {self.prog} --help)\n")


def _config_path(value: str | None) -> str:
    return value or os.environ.get("ROUTER_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(
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
        help="receiver (HTTP to Kafka), worker (Kafka to RTK and topics), or all: both "
        "(default: all)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="also trust the local key pair under .router/, made on first use (never in "
        "production; default: off)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serving processes sharing the port (SO_REUSEPORT), one consumer group (default: 1)",
    )
    serve.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)"
    )

    commands.add_parser("check-config", help="validate a configuration file")

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
        "--preset",
        default=None,
        help="the participant's preset, if a rule reads it (default: none)",
    )
    explain.add_argument(
        "--recording",
        default="none",
        help="status of the recording known to be active (default: none)",
    )

    send = commands.add_parser("send", help="send a correctly signed webhook")
    send.add_argument("event", help="a JSON file, or an RTK event name for a sample payload")
    send.add_argument(
        "--url",
        required=True,
        help="the router's source URL, e.g. http://127.0.0.1:8080/webhooks/realtimekit (required)",
    )
    send.add_argument(
        "--key",
        type=Path,
        default=None,
        help="RSA private key PEM (default: the dev key under .router/)",
    )
    send.add_argument(
        "--hmac-secret",
        default=None,
        help="sign for an `hmac` source with this secret instead of RSA (default: RSA)",
    )

    tail = commands.add_parser("tail", help="print the messages of a topic as JSON lines")
    tail.add_argument("topic", help="the topic's name, e.g. rtk.decisions")
    tail.add_argument("--config", help=config_help)
    tail.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest message (default: only new messages)",
    )
    tail.add_argument(
        "--limit", type=int, default=None, help="stop after this many messages (default: never)"
    )
    tail.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        help="stop after this many seconds without a message (default: never; Ctrl-C stops)",
    )

    why = commands.add_parser(
        "why", help="tell a meeting's story from the topics and whether it was recorded"
    )
    why.add_argument("meeting_id", metavar="MEETING_ID", help="the meeting's id (meeting.id)")
    why.add_argument("--config", help=config_help)
    why.add_argument(
        "--json", action="store_true", help="one JSON object per line (default: text lines)"
    )

    backtest = commands.add_parser(
        "backtest",
        help="replay the webhooks log with a candidate policy and compare its decisions",
    )
    backtest.add_argument("--config", required=True, help="the candidate configuration")
    backtest.add_argument(
        "--from",
        dest="since",
        metavar="RFC3339",
        help="replay webhooks received from then on (default: the log's earliest)",
    )
    backtest.add_argument(
        "--until",
        metavar="RFC3339",
        help="replay webhooks received until then (default: the log's end)",
    )
    backtest.add_argument(
        "--json", action="store_true", help="one JSON document (default: a text report)"
    )

    keygen = commands.add_parser("keygen", help="write an RSA-2048 key pair for local signing")
    keygen.add_argument(
        "directory", type=Path, help="where to write private.pem and public.pem (made if missing)"
    )

    broker = commands.add_parser("broker", help="run the embedded Kafka-compatible broker alone")
    broker.add_argument("--port", type=int, default=9092, help="port (default: 9092)")
    broker.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")

    console = commands.add_parser("console", help="serve the read-only web page for people")
    console.add_argument("--config", help=config_help)
    console.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    console.add_argument("--port", type=int, default=8081, help="listen port (default: 8081)")
    console.add_argument(
        "--no-auth",
        action="store_true",
        help="ask for no credentials, only with a loopback --host (default: credentials from "
        "console.username and console.password)",
    )

    _add_app_options(commands.choices, config_help)

    # The emulator's own parser reads its options (`router emulate --help` shows them), so
    # that the other commands do not import the emulator and its web server to start.
    commands.add_parser("emulate", help="run the RealtimeKit API emulator", add_help=False)
    return parser


def _add_app_options(parsers: Mapping[str, argparse.ArgumentParser], config_help: str) -> None:
    """`--config` of `check-config`, and `--app NAME` on the commands that read a policy or
    the topics (the apps form), made later as they are."""
    parsers["check-config"].add_argument("--config", help=config_help)
    for command, app_help in _APP_OPTIONS.items():
        parsers[command].add_argument("--app", help=app_help)


_APP_OPTIONS = {
    "explain": "the app whose policy to use (the apps form; default: its only app, "
    "needed when it has several)",
    "why": "only the records of this app (the apps form; default: every record)",
    "backtest": "replay this app's webhooks only (the apps form; default: every app)",
    "console": "show this app's meetings only (the apps form; default: every app's)",
}


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
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = report(exc)
        if code is None:
            raise  # a bug: its traceback is what tells where
        return code


def report(exc: BaseException) -> int | None:
    """Print an expected failure's lines on stderr and give its exit code; None for a bug."""
    failure = failure_of(exc)
    if failure is None:
        return None
    code, lines = failure
    for line in lines:
        print(line, file=sys.stderr)
    return code


def failure_of(exc: BaseException) -> tuple[int, list[str]] | None:
    """The exit code and the lines to print for an expected failure; None for a bug."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, list(exc.problems)  # (one line per problem, `FILE:LINE: ...`)
    usage = _usage_problem(exc)
    if usage is not None:
        return EXIT_USAGE, [f"router: {_one_line(usage)}"]
    runtime = _runtime_problem(exc)
    return None if runtime is None else (EXIT_RUNTIME, [f"router: {_one_line(runtime)}"])


def _usage_problem(exc: BaseException) -> str | None:
    if isinstance(exc, UsageError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.errno in _ADDRESS_ERRNOS:
        return str(exc)  # (names the address and the reason)
    return None


def _runtime_problem(exc: BaseException) -> str | None:
    import aiohttp

    from router.kafka import BROKER_ERRORS

    if isinstance(exc, DependencyError):
        return str(exc)
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return _reason(exc)
    if isinstance(exc, BROKER_ERRORS):
        return f"the Kafka broker: {_reason(exc)}"
    return None


def _reason(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    if text.startswith(name):  # (aiokafka's errors name themselves)
        return text
    return f"{name}: {text}" if text.strip() else name


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _dispatch(args: argparse.Namespace) -> int:
    from router import commands

    handler = getattr(commands, args.command.replace("-", "_"))
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
