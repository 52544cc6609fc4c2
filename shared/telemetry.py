"""Azure Monitor OpenTelemetry: configured at most once per worker process, and not even imported when off.

`configure_telemetry()` (called by function_app at import) picks one mode for the process:

- "off" — APPLICATIONINSIGHTS_CONNECTION_STRING is not set. Nothing from `azure.monitor.opentelemetry` or
  `opentelemetry` is imported (≈0.3 s of cold start otherwise); every helper below is a no-op.
- "worker" — PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true (the Azure setup, with host.json
  `telemetryMode: OpenTelemetry`): the Functions Python worker has already called configure_azure_monitor()
  at worker init, and before each invocation it attaches the invocation's trace context (the host's
  traceparent) as the current OpenTelemetry context. Configuring again would be refused for traces and
  would add a second log handler (every log sent twice), so we don't. We only instrument asyncpg, whose
  spans (PostgreSQL dependencies) and our log records then join the invocation's trace through that
  context; the host records the request itself.
- "app" — the connection string is set and no worker configures it (`func start` or an app without the
  worker setting, and the local host): we configure Azure Monitor once (dependencies, exceptions, logs) and
  instrument asyncpg. Requests are the host's to record: the Functions host does; the local host opens a
  server span per request itself (devtools/local_telemetry.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from shared.lazy_imports import lazy_module
from shared.logs import attach_filter_to_root_handlers

if TYPE_CHECKING:
    from shared import settings as app_settings
    from shared.settings import AppSettings
else:
    # Read only when a connection string is set: off, indexing builds no settings model (lazy_imports.py).
    app_settings = lazy_module("shared.settings")

TelemetryMode = Literal["off", "worker", "app"]

logger = logging.getLogger("mcp_registry.telemetry")

_lock = threading.Lock()
_mode: TelemetryMode | None = None

SERVICE_NAME = "mcp-registry-api"
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
_EXPORTER_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.monitor.opentelemetry")


def telemetry_mode() -> TelemetryMode:
    return _mode or "off"


def _settings(env: Mapping[str, str]) -> AppSettings | None:
    try:
        return app_settings.AppSettings.from_env(env)
    except app_settings.SettingsError as exc:
        logger.warning("telemetry not configured: %s", exc)
        return None


def configure_telemetry(env: Mapping[str, str] | None = None) -> TelemetryMode:
    """Set up telemetry for this process once; later calls return the mode chosen the first time."""
    global _mode
    with _lock:
        if _mode is not None:
            return _mode
        env = os.environ if env is None else env
        if not env.get(CONNECTION_STRING, "").strip():  # unset or blank, as the settings read it
            _mode = "off"
            return _mode
        settings = _settings(env)
        if settings is None or not settings.appinsights_connection_string:
            _mode = "off"
            return _mode
        if settings.worker_configures_telemetry:
            _mode = "worker"
        else:
            try:
                _configure_azure_monitor(settings.appinsights_connection_string)
            except Exception as exc:  # telemetry must never stop the app from indexing or serving
                logger.error("telemetry not configured: Azure Monitor refused the setup (%s)", type(exc).__name__)
                _mode = "off"
                return _mode
            _mode = "app"
        _instrument_asyncpg()
        # The exporter's own HTTP calls would be logged (and exported, and logged...) at INFO: warnings only.
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        # The Azure Monitor log handler gets our context/redaction filter too.
        attach_filter_to_root_handlers()
        logger.info("telemetry configured", extra={"telemetry_mode": _mode})
        return _mode


def _configure_azure_monitor(connection_string: str) -> None:
    # Resource detectors: off Azure the default VM detector probes the instance metadata endpoint; use
    # the environment-only detector there and the Functions one on Azure (as the worker does).
    os.environ.setdefault("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "azure_functions" if app_settings.running_on_azure() else "otel")
    if not app_settings.running_on_azure():
        os.environ.setdefault("OTEL_SERVICE_NAME", SERVICE_NAME)
    import azure.monitor.opentelemetry as distro

    # Looked up on the module at call time (a test counts the calls).
    distro.configure_azure_monitor(connection_string=connection_string)


def _instrument_asyncpg() -> None:
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]  # SQL text only, no parameters
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    except Exception as exc:  # telemetry must never stop the app
        logger.warning("asyncpg instrumentation unavailable (%s)", type(exc).__name__)


def _otel_loaded() -> bool:
    # Never import OpenTelemetry from here: only use it when the process already has it.
    return "opentelemetry.trace" in sys.modules


def current_trace_id() -> str | None:
    """The current OpenTelemetry trace id (32 hex digits), when telemetry is on and a trace is active."""
    if not _otel_loaded():
        return None
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def record_exception(exc: BaseException) -> None:
    """Attach an unexpected exception to the current span (no-op without telemetry)."""
    if not _otel_loaded():
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
