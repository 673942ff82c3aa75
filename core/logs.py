"""Operator logs: one format per process (``log_format`` json or text), on stderr, with third-party noise tamed.

Every record carries the request id of the call being served (services/telemetry.REQUEST_ID), and the structured
lines of services/telemetry.event carry their fields: as JSON keys in json mode, as ``key=value`` pairs in text mode.
stdout is never written: it belongs to the MCP stdio protocol.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from core.settings import Settings
from services.telemetry import REQUEST_ID

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "tame_third_party"]

# Libraries that log every request, connection or migration step at INFO or DEBUG. They are held at WARNING; at
# log_level DEBUG they are let through at INFO (their DEBUG output is thousands of lines per minute).
NOISY = (
    "httpx",
    "httpcore",
    "hpack",
    "urllib3",
    "curl_cffi",
    "yfinance",
    "peewee",
    "alembic",
    "apscheduler",
    "asyncio",
    "aiosqlite",
    "sse_starlette",
    "mcp.server.lowlevel.server",  # "Processing request of type CallToolRequest" for every request
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
    "multipart",
)
# Record attributes that are not fields; color_message: uvicorn's copy of the message with terminal colours.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "fields", None) or {})
    # Other `extra=` keys a library passed are kept too (values rendered as text when not JSON-ready).
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in ("fields", "event", "request_id") and not key.startswith("_"):
            fields.setdefault(key, value)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, event, request_id, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Attributes LogRecord does not declare: ``event`` from services.telemetry's extra, ``request_id`` from the
        # filter above.
        if event := getattr(record, "event", None):
            out["event"] = event
        if request_id := getattr(record, "request_id", None):
            out["request_id"] = request_id
        for key, value in _fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` (the event's fields and the request id appended)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = _fields(record)
        if request_id := getattr(record, "request_id", None):
            pairs["request_id"] = request_id
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays below the line
        extra = " ".join(f"{k}={_text(v)}" for k, v in pairs.items())
        return f"{head} {extra}{sep}{tail}"


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or " " in text or '"' in text or "=" in text) else text


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def tame_third_party(level: str) -> None:
    ceiling = logging.INFO if level == "DEBUG" else logging.WARNING
    for name in NOISY:
        logging.getLogger(name).setLevel(ceiling)


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """The root logger: one stderr handler in the configured format and level; replaces any earlier handler, so a
    library's own setup (uvicorn's, dramatiq's) does not leave a second format behind."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    tame_third_party(settings.log_level)
    logging.captureWarnings(True)


def reformat_handlers(settings: Settings) -> None:
    """Give the handlers someone else installed (dramatiq's worker processes) our format and request ids."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter_for(settings.log_format))
        handler.addFilter(_RequestIdFilter())
    tame_third_party(settings.log_level)
