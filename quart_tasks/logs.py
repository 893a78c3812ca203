"""Log lines: JSON objects in production, readable text in development.

Only the fields a handler names reach a line: no headers, bodies or query
strings, so no token or password can be logged by accident.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import lru_cache
from typing import Any

import orjson

LOGGER_NAME = "quart_tasks"
# Attributes every LogRecord has; anything else on a record was passed in `extra`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}


@lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def utc_time(record: logging.LogRecord) -> str:
    """When `record` was made, in UTC to the millisecond: `2026-12-01T15:38:06.061Z`.

    Every request logs a line, and most lines of a second share all but the
    milliseconds, so the rest is formatted once a second.
    """
    return f"{_utc_second(int(record.created))}.{int(record.msecs):03d}Z"


class JSONFormatter(logging.Formatter):
    """One JSON object a line, by orjson: on a request's line, a twelfth of the time the
    standard library's encoder takes."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **extra_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # an int past 64 bits: the standard library's encoder takes it
            return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = extra_fields(record)
        if fields and record.name != ACCESS_LOGGER:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


ACCESS_LOGGER = f"{LOGGER_NAME}.access"


def configure_logging(level: str, log_format: str) -> None:
    """Send the `quart_tasks` loggers to stderr; safe to call for every app built.

    A serving worker also spares each record the lookups no line shows
    (`serving.tuning`).
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    for handler in logger.handlers:
        if getattr(handler, "_quart_tasks", False):
            handler.setFormatter(formatter)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler._quart_tasks = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False
