"""The request telemetry the Functions host records on Azure, recorded by the local host in its place.

With a connection string and no Functions worker, shared.telemetry configures Azure Monitor in "app" mode
(dependencies, exceptions, logs). The Functions host records each request itself; the local host stands in
for it with a server span per request that continues the caller's W3C traceparent. The function runs inside
that span, so its PostgreSQL calls and log lines (the access line included) join the request's trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from shared.telemetry import telemetry_mode

TRACER_NAME = "mcp_registry"


@contextmanager
def request_span(
    name: str, *, traceparent: str | None, tracestate: str | None, attributes: Mapping[str, Any]
) -> Iterator[Any]:
    """A current server span for one request in "app" mode (continuing `traceparent`); otherwise yields None."""
    if telemetry_mode() != "app":
        yield None
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent or "", "tracestate": tracestate or ""}
    parent = TraceContextTextMapPropagator().extract(carrier) if traceparent else None
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def end_request_span(span: Any, status: int) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
