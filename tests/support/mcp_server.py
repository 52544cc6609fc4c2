"""A real MCP server built with the SDK (MCPServer, formerly FastMCP), run as its own process on loopback:
`python -m tests.support.mcp_server --port P --transport streamable-http|sse --tools FILE [--page-size N]
[--delay-s S] [--log FILE]`.

Its tools come from a JSON file (`[{"name", "description"}, ...]`), each taking one string argument; with
`--page-size` it lists them in pages (cursor = the next index). Every HTTP request is logged to `--log` as a
JSON line (path, query, Host header, start and end times), so tests can count what reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ListToolsResult, PaginatedRequestParams


class PagedServer(MCPServer):
    """Lists its tools `page_size` at a time (MCPServer itself lists them all at once)."""

    page_size: int | None = None

    async def _handle_list_tools(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        tools = await self.list_tools()
        if self.page_size is None:
            return ListToolsResult(tools=tools)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + self.page_size
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)


def build_server(tools: list[dict[str, str]], page_size: int | None) -> PagedServer:
    server = PagedServer(name="registry-test-server", version="3.1.4")
    server.page_size = page_size
    for spec in tools:

        def tool(city: str) -> str:
            return city

        server.add_tool(tool, name=spec["name"], description=spec["description"])
    return server


class RequestLog:
    """ASGI middleware: one JSON line per HTTP request, written when its response ends."""

    def __init__(self, app: Any, path: Path | None, delay_s: float) -> None:
        self.app = app
        self.path = path
        self.delay_s = delay_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            await self.app(scope, receive, send)
        finally:
            if self.path is not None:
                headers = dict(scope["headers"])
                entry = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope["query_string"].decode(),
                    "host": headers.get(b"host", b"").decode(),
                    "started": started,
                    "ended": time.time(),
                }
                with self.path.open("a") as log:
                    log.write(json.dumps(entry) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--tools", type=Path, required=True)
    parser.add_argument("--page-size", type=int)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    server = build_server(json.loads(args.tools.read_text()), args.page_size)
    # The probe may reach it by a name that resolves to loopback (`localhost`), so any Host is accepted.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if args.transport == "sse":
        app = server.sse_app(transport_security=security)
    else:
        app = server.streamable_http_app(transport_security=security)
    config = uvicorn.Config(
        RequestLog(app, args.log, args.delay_s), host="127.0.0.1", port=args.port, log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
