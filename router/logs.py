"""Logging set-up: JSON lines when stdout is not a terminal, readable lines when it is.

Fields passed with `extra=` become JSON keys. Nothing secret is ever passed to a logger; as a
second line of defence, values of keys that name a secret are replaced before printing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, ClassVar

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "secret", "password", "signature", "authorization", "streamkey")


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
        return json.dumps(line, default=str, separators=(",", ":"))


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
    out = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        lowered = key.lower().replace("_", "")
        out[key] = "[redacted]" if any(w in lowered for w in _SECRET_WORDS) else value
    return out


def configure(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Route every logger to stdout in the chosen format."""
    use_json = (not sys.stdout.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka reports every reconnect attempt at ERROR; the router reports outages itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
