"""JSON logging: one object per line, with the invocation's context on every record.

Configured once per process. Request-scoped fields (invocation id, route, caller oid, trace id) live in
a context variable so that every record logged while serving a request carries them.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)

_configured = False


class _RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = request_fields.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(level: str = "INFO") -> None:
    """Route the app's loggers to stdout as JSON (the Functions worker also forwards them)."""
    global _configured
    root = logging.getLogger()
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(json_formatter())
        handler.addFilter(_RequestContextFilter())
        root.addHandler(handler)
        _configured = True
    root.setLevel(level)


def bind_request_fields(**fields: Any) -> None:
    current = request_fields.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})
