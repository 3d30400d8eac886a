"""Logging set-up: JSON lines when stdout is not a terminal, readable lines when it is.

Fields passed with `extra=` become JSON keys. Nothing secret is ever passed to a logger; as a
second line of defence, values of keys that name a secret are replaced before printing.

aiohttp reports a request it cannot parse, or a body it cannot decode, at ERROR with a
traceback, as if the server had failed. It is the sender's fault and already answered with a
400, so it is logged as one INFO line naming the problem: errors in the log stay real errors,
and a flood of garbage cannot fill the log with tracebacks (which would also quote its bytes).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import sys
from typing import Any, ClassVar

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "secret", "password", "signature", "authorization", "streamkey")
# One encoder for every line: `json.dumps` with options builds a new one per call.
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extras(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message key=value ...` for people at a terminal."""

    LEVELS: ClassVar[dict[str, str]] = {"WARNING": "WARN", "CRITICAL": "CRIT"}

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%H:%M:%S")
        level = self.LEVELS.get(record.levelname, record.levelname)
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        text = f"{stamp} {level:<5} {record.name}: {record.getMessage()}"
        if fields:
            text += f"  {fields}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    fields = vars(record)
    out = {}
    # (the standard attributes are most of a record's: skipped with one set look-up each)
    for key in [k for k in fields if k not in _STANDARD]:
        kind = _kind(key)
        if kind == "extra":
            out[key] = fields[key]
        elif kind == "secret":
            out[key] = "[redacted]"
    return out


@functools.lru_cache(maxsize=1024)
def _kind(key: str) -> str:
    """`standard` (a LogRecord attribute), `secret` (to redact) or `extra`; the same few keys
    come with every record, so the answer is remembered."""
    if key.startswith("_"):
        return "standard"
    lowered = key.lower().replace("_", "")
    return "secret" if any(w in lowered for w in _SECRET_WORDS) else "extra"


class MalformedRequests(logging.Filter):
    """Turns aiohttp's ERROR report of a malformed request into an INFO line without the
    traceback (see the module docstring); passes every other record unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "aiohttp.server":
            return True
        # (imported here: the commands that serve nothing start without aiohttp)
        from aiohttp.http_exceptions import HttpProcessingError
        from aiohttp.web import RequestPayloadError

        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError | RequestPayloadError):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "malformed request refused", ()
        record.exc_info = record.exc_text = None
        record.reason = type(error.__cause__ or error).__name__
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


class Repeats(logging.Filter):
    """Lets one record of a kind (logger and message template) through per `interval` seconds
    and counts the rest into the next one: aiokafka reports each reconnect attempt of an
    outage, several a second, and the log must show its warnings without drowning in them."""

    def __init__(self, prefix: str, interval: float = 30.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._interval = interval
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix) or record.levelno >= logging.CRITICAL:
            return True
        kind = (record.name, str(record.msg))
        last, suppressed = self._last.get(kind, (float("-inf"), 0))
        if record.created - last < self._interval:
            self._last[kind] = (last, suppressed + 1)
            return False
        if len(self._last) > 256:  # bounded: kinds are templates, but be sure
            self._last.clear()
        self._last[kind] = (record.created, 0)
        if suppressed:
            record.repeated = suppressed
        return True


def configure(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Route every logger to stdout in the chosen format."""
    use_json = (not sys.stdout.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(MalformedRequests())
    handler.addFilter(Repeats("aiokafka"))
    # Neither format shows thread or process: not collected for every record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka's warnings and errors are shown, each kind at most once per 30 s (`Repeats`).
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
