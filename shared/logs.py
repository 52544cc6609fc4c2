"""Structured logging: one JSON object per line, the invocation's context on every record, secrets redacted.

Request-scoped fields (invocation id, function, method, route, caller oid, trace id) live in a context
variable that `shared.http.endpoint` sets, so every record logged while serving a request carries them.

Where the lines go depends on who runs the app (`configure_logging` decides, once per process):

- The project's local host (`python -m devtools.local_host`) and tests: no Functions worker, so we add one
  stdout handler with the JSON formatter; the local host's output is the log.
- On Azure (or under Core Tools) the Python worker has already put its own handler on the root logger; it
  sends every record over gRPC to the host, which writes it to the log stream / Application Insights.
  Anything we print to stdout is *also* collected by the host, so a second stdout handler would log every
  line twice. There we add no handler: we give the worker's handler our JSON formatter (for the app's
  records; the worker's own records keep their plain text) and our filter, so the records it forwards
  are structured and redacted. When Azure Monitor OpenTelemetry is on, its LoggingHandler gets the filter
  too: the request fields become custom dimensions of each trace row.

Never logged: bearer tokens, the Authorization header, EasyAuth principal blobs, passwords and DSNs with
passwords. Code must not log them in the first place; the filter below redacts them again as defence in
depth (message with its arguments, every field, exception and stack text), once per record, after capping
what a line may carry (MAX_TEXT_CHARS, MAX_TRACE_CHARS): redaction (shared.redaction) is linear in its input
and runs on bounded input, so no request can make the logging of its line expensive.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from shared.redaction import redact

request_fields: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)

# Loggers whose level LOG_LEVEL sets (the app's own); on the local run the root logger follows it too.
APP_LOGGERS = ("mcp_registry", "shared", "function_app")
# Records of these loggers are the Functions worker's own: forwarded as the worker formats them.
_WORKER_LOGGERS = ("azure_functions_worker", "proxy_worker", "azure.functions")

# What one log line may carry: the message and each string field are cut to MAX_TEXT_CHARS, exception and
# stack text to MAX_TRACE_CHARS (their tail: the innermost frames and the exception), before redaction. An
# anonymous caller chooses the request path, which is the access line's message and `route` field.
MAX_TEXT_CHARS = 2048
MAX_TRACE_CHARS = 16384
TRUNCATED = "…[truncated {} chars]"

# Where a cut may end: a secret cut in half would no longer look like one (`password=Sup3r-Se`), so the run
# of other characters at the cut goes too. Taken whole on the reversed text: one possessive run, linear.
_UNCUT_RUN = re.compile(r"[^\s'\"/?#@,;&}=:\\]*+")


def redacted_head(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` cut to at most `limit` characters and redacted, then a marker saying how many were dropped."""
    if len(text) <= limit:
        return redact(text)
    partial = _UNCUT_RUN.match(text[:limit][::-1])
    keep = limit - (partial.end() if partial else 0)
    return redact(text[:keep]) + TRUNCATED.format(len(text) - keep)


def redacted_tail(text: str, limit: int = MAX_TRACE_CHARS) -> str:
    """The last `limit` characters of `text` at most, redacted, after a marker saying how many were dropped."""
    if len(text) <= limit:
        return redact(text)
    partial = _UNCUT_RUN.match(text, len(text) - limit)
    start = partial.end() if partial else len(text) - limit
    return TRUNCATED.format(start) + "\n" + redact(text[start:])


_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Set on a record once its text is capped and redacted: a record passing several handlers is done once.
_SANITIZED = "_registry_sanitized"
_SCALARS = (int, float, bool, type(None))


def _field_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


# Request fields whose values this service produces or has validated, so they cannot carry what a caller chose:
# the invocation id (the host's GUID), the function name (ours), the trace id (32 hex digits, checked or ours),
# the caller's oid (a GUID, checked with the token), the error code (a constant of an error class). On every
# record (`sanitize`, `log_access`) every other field that is not a number, bool or None, present or added
# later, is capped and redacted.
_TRUSTED_FIELDS = frozenset({"invocation_id", "function", "trace_id", "user_oid", "error_code"})
# A method is written as is only when it is one of these (the host routes only the methods a trigger declares).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _safe_field(key: str, value: Any) -> Any:
    if key in _TRUSTED_FIELDS or isinstance(value, _SCALARS) or (key == "method" and value in _METHODS):
        return value
    return redacted_head(_field_text(value))


def sanitize(record: logging.LogRecord) -> None:
    """Cap and redact the record's message, fields, exception and stack text; a second call does nothing.

    This is the only redaction of a line: its rendered form holds nothing else a caller could choose.
    """
    if getattr(record, _SANITIZED, False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record
        message = str(record.msg)
    record.msg, record.args = redacted_head(message), None
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD_ATTRIBUTES:
            setattr(record, key, _safe_field(key, value))
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redacted_tail(record.exc_text)
    if record.stack_info:
        record.stack_info = redacted_tail(record.stack_info)
    setattr(record, _SANITIZED, True)


# The access line (`log_access`): one per request, so its cost is paid by every request. Its fields are known
# when it is written, so it is built here once, capped and redacted field by field, and marked sanitized; the
# filter and the formatter then pass it through (python-json-logger's generic rendering walks every attribute of
# the record). The generic path (findCaller, the filter copying the request fields, `sanitize` walking ~25
# attributes and redacting six, the generic formatter) made the endpoint wrapper around a handler that does
# nothing cost 77 µs a request; built here, 27 µs (the record, the JSON and the write remain).
#
# The fields of a record built by `log_access`, in order, for the formatter (underscore: never a JSON field).
_LINE_FIELDS = "_registry_line_fields"


def log_access(logger: logging.Logger, status: int, duration_ms: float) -> None:
    """The current request's access line, "<method> <route> <status>" with the status, the duration and the
    request fields, capped and redacted as `sanitize` would, built once and handed to the handlers as done."""
    if not logger.isEnabledFor(logging.INFO):
        return
    request = request_fields.get() or {}
    fields: dict[str, Any] = {"status": status, "duration_ms": duration_ms}
    for key, value in request.items():
        fields[key] = _safe_field(key, value)
    message = redacted_head(f"{request.get('method', '')} {request.get('route', '')} {status}")
    frame = sys._getframe(1)  # the caller, as findCaller gives it, without walking the stack
    record = logger.makeRecord(
        logger.name, logging.INFO, frame.f_code.co_filename, frame.f_lineno, message, (), None, frame.f_code.co_name
    )
    line = {key: value for key, value in fields.items() if key not in record.__dict__}
    record.__dict__.update(line)
    record.__dict__[_LINE_FIELDS] = line
    record.__dict__[_SANITIZED] = True
    logger.handle(record)


class RequestContextFilter(logging.Filter):
    """Adds the current request's fields to a record, then caps and redacts it (`sanitize`).

    Installed on handlers (a filter on a logger would miss records propagated from child loggers).
    Idempotent, so a record passing several handlers is done once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SANITIZED, False):
            return True
        fields = request_fields.get()
        if fields:
            for key, value in fields.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        sanitize(record)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter over the sanitized record (a record that skipped the filter is
    sanitized here); the exception is rendered from the redacted `exc_text`, never formatted again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The encoder `json.dumps(..., cls=...)` builds for every line, built once: same output, ~1.5 µs less a line.
        encoder = self.json_encoder or json.JSONEncoder
        self._encoder = encoder(default=self.json_default, indent=self.json_indent, ensure_ascii=self.json_ensure_ascii)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        if self.json_serializer is json.dumps:
            return str(self._encoder.encode(log_data))
        return str(super().jsonify_log_record(log_data))

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get(_LINE_FIELDS)
        if line is not None and not record.exc_info and not record.stack_info:
            # The access line (`log_access`): its fields are known, so the generic walk over the record's
            # attributes is skipped; the same JSON as the generic path (tests/test_logging.py compares them).
            record.message = record.getMessage()
            log_data = {
                "timestamp": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.message,
                **line,
            }
            return self.serialize_log_record(log_data)
        sanitize(record)
        exc_info, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info

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
            sanitize(record)
            return self.worker.format(record)
        return self.json.format(record)


def json_formatter() -> JsonFormatter:
    return RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, _SANITIZED],
    )


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is when a record comes (test runners swap it), unless given a stream.

    Lines written while an event loop runs reach the stream's file at the end of the loop's turn, in one write
    (a flush scheduled with `call_soon` runs before the loop next waits for I/O); elsewhere each line is flushed
    as it is written. One write per line was one system call per request on the local host: under load several
    requests finish in one turn. At exit `logging.shutdown` flushes whatever a stopped loop left.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream or sys.stdout)
        self._follow_stdout = stream is None
        # The loop a flush is scheduled on; None when no flush is pending.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._follow_stdout and self.stream is not sys.stdout:
                previous, self.stream = self.stream, sys.stdout
                if not previous.closed:  # lines of this turn still in its buffer (a closed one took them along)
                    previous.flush()
            self.stream.write(self.format(record) + self.terminator)
            if not self._flush_at_end_of_turn():
                self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_at_end_of_turn(self) -> bool:
        """Schedule one flush for the running loop's turn; False when no loop runs in this thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._flush_turn)
        return True

    def _flush_turn(self) -> None:
        self._flush_loop = None
        try:
            self.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "flushing the log stream failed"}))


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


