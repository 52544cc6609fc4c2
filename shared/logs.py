"""Structured logging: one JSON object per line, the invocation's context on every record, secrets redacted.

Request-scoped fields (invocation id, function, method, route, caller oid, trace id) live in a context
variable that `shared.http.endpoint` sets, so every record logged while serving a request carries them.

Where the lines go depends on who runs the app (`configure_logging` decides, once per process):

- The project's local host (`python -m shared.local_host`) and tests: no Functions worker, so we add one
  stdout handler with the JSON formatter; the local host's output is the log.
- On Azure (or under Core Tools) the Python worker has already put its own handler on the root logger; it
  sends every record over gRPC to the host, which writes it to the log stream / Application Insights.
  Anything we print to stdout is *also* collected by the host, so a second stdout handler would log every
  line twice. There we add no handler: we give the worker's handler our JSON formatter (for the app's
  records; the worker's own records keep their plain text) and our filter, so the records it forwards
  are structured and redacted. When Azure Monitor OpenTelemetry is on, its LoggingHandler gets the filter
  too: the request fields become custom dimensions of each trace row.

Never logged: bearer tokens, the Authorization header, EasyAuth principal blobs, passwords and DSNs with
passwords. Code must not log them in the first place; the filter and formatter below redact them again as
defence in depth (message, arguments, string fields and the rendered line, exception text included).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)

# Loggers whose level LOG_LEVEL sets (the app's own); on the local run the root logger follows it too.
APP_LOGGERS = ("mcp_registry", "shared", "function_app")
# Records of these loggers are the Functions worker's own: forwarded as the worker formats them.
_WORKER_LOGGERS = ("azure_functions_worker", "proxy_worker", "azure.functions")

REDACTED = "[REDACTED]"

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization values: "Bearer <token>" (any case), also Basic credentials.
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9\-._~+/=]{8,}"), rf"\1\2{REDACTED}"),
    # Header or field values that are credentials, in "name: value", "name=value" and JSON/dict forms.
    (
        re.compile(
            r"(?i)(\b(?:authorization|proxy-authorization|cookie|set-cookie|x-ms-client-principal(?:-[a-z]+)?"
            r"|x-ms-token-[a-z0-9-]+|x-zumo-auth|access_token|id_token|refresh_token|client_secret"
            r"|password|passwd|pwd)\\?['\"]?\s*[:=]\s*)(\\?['\"]?)([^'\"\\\s,;&}]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    # A JWS/JWT anywhere (header.payload.signature, base64url JSON header).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Base64 JSON blobs (what EasyAuth's X-MS-CLIENT-PRINCIPAL carries).
    (re.compile(r"\beyJ[A-Za-z0-9+/_-]{16,}={0,2}"), REDACTED),
    # Passwords in URLs: scheme://user:password@host (DATABASE_URL and friends).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s'\"]*:)[^@/?#\s'\"]+@"), rf"\1{REDACTED}@"),
)


# Every pattern above needs one of these (lower-cased) words to match: text without any of them (nearly every
# log line and field) skips the five substitutions. Profiled at 1M registrations, redact() was 14.5 % of the
# serving process's CPU on GET /registrations/{id} (it runs on the access line and on each of its fields).
_SECRET_HINTS = (
    "bearer", "basic", "authorization", "cookie", "x-ms-", "x-zumo", "_token", "secret", "passw", "pwd", "eyj", "://",
)


def redact(text: str) -> str:
    """The text with every credential-looking value replaced by [REDACTED]."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Adds the current request's fields to a record and redacts its message, arguments and fields.

    Installed on handlers (a filter on a logger would miss records propagated from child loggers).
    Idempotent, so a record passing several handlers may go through it again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = request_fields.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter; the rendered line is redacted once more (exception text included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC with milliseconds: 2025-11-11T10:00:00.123+00:00
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class HostForwardingFormatter(logging.Formatter):
    """For the worker's handler: the app's records as JSON, the worker's own records as it writes them."""

    def __init__(self, worker_formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.json = json_formatter()
        self.worker = worker_formatter or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith(_WORKER_LOGGERS):
            return redact(self.worker.format(record))
        return self.json.format(record)


def json_formatter() -> JsonFormatter:
    return RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
    )


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is when a record comes (test runners swap it), unless given a stream."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream or sys.stdout)
        self._follow_stdout = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stdout:
            self.stream = sys.stdout
        super().emit(record)


_configured = False
_filter = RequestContextFilter()


def _is_worker_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith(_WORKER_LOGGERS[:2])


def worker_handlers() -> list[logging.Handler]:
    """The Functions worker's gRPC log handlers on the root logger (none on the local run)."""
    return [handler for handler in logging.getLogger().handlers if _is_worker_handler(handler)]


def attach_filter_to_root_handlers() -> None:
    """Give every root handler our context/redaction filter (call again after another library adds one)."""
    for handler in logging.getLogger().handlers:
        if _filter not in handler.filters:
            handler.addFilter(_filter)


def level_from(value: str | None) -> int | None:
    """The numeric level for a standard level name (any case); None when it is not one."""
    return logging.getLevelNamesMapping().get((value or "INFO").strip().upper())


def configure_logging(level: str | None = "INFO", *, stream: IO[str] | None = None) -> None:
    """Structured logging for this process; repeated calls only update levels and filters."""
    global _configured
    root = logging.getLogger()
    numeric_level = level_from(level)
    invalid = numeric_level is None
    if numeric_level is None:
        numeric_level = logging.INFO
    workers = worker_handlers()
    if not _configured:
        if workers:
            for handler in workers:
                handler.setFormatter(HostForwardingFormatter(handler.formatter))
        else:
            handler = _StdoutHandler(stream)
            handler.setFormatter(json_formatter())
            root.addHandler(handler)
        _configured = True
    if not workers:
        # Our process, our root level. Under the worker the root level is the worker's (its own logs).
        root.setLevel(numeric_level)
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(numeric_level)
    attach_filter_to_root_handlers()
    if invalid:
        logging.getLogger("mcp_registry.logs").warning("LOG_LEVEL %r is not a standard level; using INFO", level)


def bind_request_fields(**fields: Any) -> None:
    current = request_fields.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})


