"""Probe one endpoint over MCP with the official SDK's client: connect over the registration's transport,
negotiate (the SDK's `auto` mode: `server/discover`, else the `initialize` handshake), read the server's name,
version, protocol version and capabilities, then list every tool, following `nextCursor`.

The SDK (and httpx2 with it) is imported by this module only, and this module only when a probe first runs
(shared/verification.py imports it inside the function that probes): `import function_app` does not pay for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from shared.fingerprints import tool_fingerprint, tool_set_fingerprint
from shared.probe_network import (
    AddressPolicy,
    AddressRefused,
    HostNotFound,
    Origin,
    ProbeClientFactory,
    ProbeStopped,
    ProbeTrace,
    Resolver,
    resolve_allowed,
    system_resolver,
)
from shared.settings import ProbeSettings

# The SDK logs every failed connection at ERROR with a traceback; for a probe that is an outcome, recorded
# as such, not an error of this service.
logging.getLogger("mcp.client").setLevel(logging.CRITICAL)

PROBE_CLIENT = Implementation(name="mcp-registry-probe", version="1")
# What a tool record keeps: what a model reads and a client sends (the fingerprinted fields) and its title.
RECORDED_TOOL_FIELDS = ("name", "title", "description", "inputSchema", "annotations")


@dataclass
class ProbeResult:
    status: str
    detail: str | None = None
    protocol_version: str | None = None
    server_info: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tools_fingerprint: str | None = None
    resource_metadata: str | None = None
    trace: ProbeTrace = field(default_factory=ProbeTrace, repr=False)


class _NotMcp(Exception):
    pass


def _tool_record(tool: Any) -> dict[str, Any]:
    dumped = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    record = {name: dumped[name] for name in RECORDED_TOOL_FIELDS if name in dumped}
    record["fingerprint"] = tool_fingerprint(record)
    return record


async def _list_tools(client: Client, max_tools: int, trace: ProbeTrace) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    cursors: set[str] = set()
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        for tool in page.tools:
            if tool.name in names:
                raise _NotMcp(f"the server lists the tool {tool.name!r} twice")
            names.add(tool.name)
            tools.append(_tool_record(tool))
        if len(tools) > max_tools:
            trace.stop("refused", f"the server lists more than {max_tools} tools")
            raise ProbeStopped("tool count cap reached")
        cursor = page.next_cursor
        if not cursor:
            return tools
        if cursor in cursors:
            raise _NotMcp("the server's tool list repeats a page cursor")
        cursors.add(cursor)


def _transport(url: str, kind: str, factory: ProbeClientFactory) -> Any:
    if kind == "sse":
        return sse_client(
            url, timeout=factory.timeout_s, sse_read_timeout=factory.timeout_s, httpx_client_factory=factory
        )
    return streamable_http_client(url, http_client=factory())


def _leaf_errors(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaf_errors(inner)]
    return [error]


def _outcome_of_failure(error: BaseException | None, trace: ProbeTrace) -> tuple[str, str, str | None]:
    """(status, detail, resource metadata URL) of a probe that did not list its tools, from what the HTTP layer
    saw first: its own refusals, then an authorization challenge, then the transport's errors."""
    if trace.outcome is not None:
        return trace.outcome[0], trace.outcome[1], None
    if trace.challenge is not None:
        if trace.challenge.headers.get("www-authenticate", "").strip().lower().startswith("bearer"):
            detail = "the server requires authorization (401 with a Bearer challenge)"
            return "auth_required", detail, extract_resource_metadata_from_www_auth(trace.challenge)
        return "not_mcp", "the server answers 401 without an MCP (Bearer) authorization challenge", None
    leaves = _leaf_errors(error) if error is not None else []
    transport_error = trace.transport_error or next(
        (leaf for leaf in leaves if isinstance(leaf, httpx2.TransportError | OSError)), None
    )
    if isinstance(transport_error, httpx2.ConnectTimeout):
        return "unreachable", "the connection timed out", None
    if isinstance(transport_error, httpx2.ConnectError | OSError):
        return "unreachable", "the connection failed", None
    if isinstance(transport_error, httpx2.TimeoutException):
        return "timeout", "the server stopped answering", None
    if trace.redirect is not None:
        return "not_mcp", f"the server redirects to {trace.redirect} (not followed; register that URL if it is the server)", None
    reason = next((str(leaf) for leaf in leaves if str(leaf)), None)
    detail = f"the server does not speak MCP here ({reason[:300]})" if reason else "the server does not speak MCP here"
    return "not_mcp", detail, None


async def probe_endpoint(
    url: str, transport: str, settings: ProbeSettings, *, resolver: Resolver = system_resolver
) -> ProbeResult:
    """Probe `url` over `transport` (`streamable-http` or `sse`); never raises for what the server does."""
    trace = ProbeTrace()
    policy = AddressPolicy(allow_loopback=settings.allow_loopback, allow_private=settings.allow_private)
    try:
        origin = Origin.of(url)
        with anyio.fail_after(settings.connect_timeout_s):
            address = await resolve_allowed(origin.host, origin.port, policy, resolver)
    except AddressRefused as exc:
        return ProbeResult("refused", str(exc), trace=trace)
    except (HostNotFound, TimeoutError) as exc:
        return ProbeResult("unreachable", str(exc) or "the host name did not resolve in time", trace=trace)
    factory = ProbeClientFactory(
        origin=origin,
        address=address,
        policy=policy,
        resolver=resolver,
        trace=trace,
        max_response_bytes=settings.max_response_bytes,
        connect_timeout_s=min(settings.connect_timeout_s, settings.timeout_s),
        timeout_s=settings.timeout_s,
    )
    result: ProbeResult | None = None
    failure: BaseException | None = None
    with anyio.move_on_after(settings.timeout_s) as deadline, anyio.CancelScope() as stopped:
        # The HTTP layer ends the probe at once when it decides the outcome itself (refused, over a cap).
        trace.cancel = stopped.cancel
        try:
            async with Client(
                _transport(url, transport, factory), mode="auto", cache=None, client_info=PROBE_CLIENT
            ) as client:
                capabilities = client.server_capabilities
                tools = await _list_tools(client, settings.max_tools, trace) if capabilities.tools else []
                info = client.server_info
                result = ProbeResult(
                    "verified",
                    protocol_version=client.protocol_version,
                    server_info=info.model_dump(by_alias=True, mode="json", exclude_none=True) if info else None,
                    capabilities=capabilities.model_dump(by_alias=True, mode="json", exclude_none=True),
                    tools=tools,
                    tools_fingerprint=tool_set_fingerprint({tool["name"]: tool["fingerprint"] for tool in tools}),
                    trace=trace,
                )
        except Exception as exc:  # what the server did decides the outcome, below
            failure = exc
    for http_client in factory.clients:
        await http_client.aclose()
    if result is not None and trace.outcome is None:
        return result
    if deadline.cancelled_caught and trace.outcome is None and trace.challenge is None:
        return ProbeResult("timeout", f"no complete answer within {settings.timeout_s:g} s", trace=trace)
    status, detail, resource_metadata = _outcome_of_failure(failure, trace)
    return ProbeResult(status, detail, resource_metadata=resource_metadata, trace=trace)
