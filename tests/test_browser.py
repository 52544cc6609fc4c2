"""A real browser against the local host: Debian's Chromium (headless), driven by Playwright.

1. The docs page renders the app's OpenAPI document and lists the registrations operations, loading
   nothing from outside the host (no CDN).
2. The frontend: a page served from the SPA's dev origin (`http://localhost:5173`, or another loopback
   origin when that port is taken) calls the API with `fetch`, `Authorization: Bearer` and JSON bodies —
   so the browser sends real CORS preflights — and creates, lists and reads a registration. A page from
   an origin the host does not allow is refused by the browser (`fetch` rejects).

Needs `apt-get install -y chromium` (the tests use /usr/bin/chromium; Playwright never downloads one).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from tests.support.host import LocalHostProcess, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEV_PORT = 5173

FRONTEND_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>frontend</title></head>
<body><p>MCP Registry frontend (test)</p>
<script>
// asFrontend: as the existing frontend's API client, every call (GETs included) carries both headers.
window.callApi = async (base, method, path, token, body, asFrontend = false) => {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== null || asFrontend) headers["Content-Type"] = "application/json";
  const init = {method, headers, mode: "cors"};
  if (body !== null) init.body = JSON.stringify(body);
  try {
    const response = await fetch(base + path, init);
    const text = await response.text();
    return {ok: true, status: response.status, body: text ? JSON.parse(text) : null,
            etag: response.headers.get("ETag")};
  } catch (error) {
    return {ok: false, error: String(error)};
  }
};
</script></body></html>
"""


# ---------------------------------------------------------------- a tiny static server for the frontend origin


class FrontendServer:
    """Serves FRONTEND_PAGE on loopback; `origin` is what the browser sends as Origin."""

    def __init__(self, host: str, port: int, origin_host: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(FRONTEND_PAGE)))
                self.end_headers()
                self.wfile.write(FRONTEND_PAGE)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.origin = f"http://{origin_host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def dev_frontend() -> Iterator[FrontendServer]:
    """The SPA's dev origin, http://localhost:5173, when that port is free; another loopback origin if not."""
    server = (
        FrontendServer("127.0.0.1", DEV_PORT, "localhost")
        if _port_is_free(DEV_PORT)
        else FrontendServer("127.0.0.1", free_port(), "127.0.0.1")
    )
    yield server
    server.close()


@pytest.fixture
def other_frontend() -> Iterator[FrontendServer]:
    server = FrontendServer("127.0.0.1", 0, "127.0.0.1")
    yield server
    server.close()


# ---------------------------------------------------------------- the browser


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile directory for this test."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield context
        finally:
            await context.close()


async def call_api(page: Page, base: str, method: str, path: str, token: str | None, body: Any = None) -> Any:
    return await page.evaluate(
        "([base, method, path, token, body]) => window.callApi(base, method, path, token, body)",
        [base, method, path, token, body],
    )


async def call_like_the_frontend(page: Page, base: str, method: str, path: str, token: str, body: Any = None) -> Any:
    result = await page.evaluate(
        "([base, method, path, token, body]) => window.callApi(base, method, path, token, body, true)",
        [base, method, path, token, body],
    )
    assert result["ok"], (method, path, result)
    return result


# ---------------------------------------------------------------- the docs page


async def test_the_docs_page_lists_the_registrations_operations_from_local_assets(
    browser: BrowserContext, api_host: LocalHostProcess
) -> None:
    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(f"{api_host.base_url}/api/docs")
    await page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    summaries = await page.eval_on_selector_all(
        ".opblock-summary", "nodes => nodes.map(n => n.innerText.replace(/\\s+/g, ' ').trim())"
    )
    text = "\n".join(summaries)
    for method, path in [
        ("POST", "/api/registrations"),
        ("GET", "/api/registrations"),
        ("GET", "/api/registrations/{registration_id}"),
        ("PATCH", "/api/registrations/{registration_id}"),
        ("PATCH", "/api/registrations/{registration_id}/status"),
        ("DELETE", "/api/registrations/{registration_id}"),
    ]:
        assert any(line.startswith(method) and path in line for line in summaries), (method, path, text)
    title = await page.inner_text(".info .title")
    assert "MCP Registry API" in title
    # Everything came from the host itself: the page, Swagger UI's assets and the document.
    assert requested and all(url.startswith(api_host.base_url) for url in requested), requested
    assert f"{api_host.base_url}/api/openapi.json" in requested
    await page.close()


# ---------------------------------------------------------------- the frontend on another origin


async def test_the_frontend_origin_creates_lists_and_reads_a_registration_through_cors(
    browser: BrowserContext,
    dev_frontend: FrontendServer,
    start_host: Callable[..., LocalHostProcess],
    user_token: Callable[..., str],
) -> None:
    host = start_host(cors=dev_frontend.origin)
    token = user_token()
    page = await browser.new_page()
    await page.goto(dev_frontend.origin + "/")
    assert await page.evaluate("location.origin") == dev_frontend.origin

    url = f"https://browser-{uuid.uuid4().hex[:12]}.example.com/mcp"
    body = {
        "endpoint_url": url,
        "endpoint_name": "Browser-made server",
        "description": "Created by the frontend through CORS",
        "owner_contact": "frontend@example.com",
        "available_tools": [{"name": "search", "description": "Finds things"}, "fetch"],
    }
    created = await call_api(page, host.base_url, "POST", "/api/registrations", token, body)
    assert created["ok"], created
    assert created["status"] == 201, created
    registration = created["body"]
    assert registration["endpoint_url"] == url and registration["status"] == "Pending"
    assert [tool["name"] for tool in registration["available_tools"]] == ["search", "fetch"]

    mine = await call_api(page, host.base_url, "GET", "/api/registrations/my?limit=10", token)
    assert mine["ok"] and mine["status"] == 200, mine
    assert [item["registration_id"] for item in mine["body"]["results"]] == [registration["registration_id"]]

    read = await call_api(page, host.base_url, "GET", f"/api/registrations/{registration['registration_id']}", token)
    assert read["ok"] and read["status"] == 200, read
    assert read["body"] == registration
    # The ETag is readable cross-origin, so the frontend can send If-Match on edits.
    assert read["etag"] == created["etag"] and read["etag"]

    # JSON errors reach the frontend too (the error shape, readable cross-origin).
    invalid = await call_api(page, host.base_url, "POST", "/api/registrations", token, {"endpoint_url": "nope"})
    assert invalid["ok"] and invalid["status"] == 422 and invalid["body"]["error_code"] == "VALIDATION_ERROR"
    await page.close()


async def test_a_page_from_an_origin_the_host_does_not_allow_is_refused_by_the_browser(
    browser: BrowserContext,
    dev_frontend: FrontendServer,
    other_frontend: FrontendServer,
    start_host: Callable[..., LocalHostProcess],
    user_token: Callable[..., str],
) -> None:
    host = start_host(cors=dev_frontend.origin)
    token = user_token()
    page = await browser.new_page()
    await page.goto(other_frontend.origin + "/")
    body = {
        "endpoint_url": f"https://refused-{uuid.uuid4().hex[:12]}.example.com/mcp",
        "endpoint_name": "Never created",
        "owner_contact": "x@example.com",
        "available_tools": [],
    }
    # A preflighted request (Authorization, JSON): the preflight gets no CORS grant, so nothing is sent.
    refused = await call_api(page, host.base_url, "POST", "/api/registrations", token, body)
    assert refused == {"ok": False, "error": "TypeError: Failed to fetch"}, refused
    listing = await call_api(page, host.base_url, "GET", "/api/registrations/my", token)
    assert listing["ok"] is False, listing
    # The same calls from the allowed origin work, and show that the refused create never happened.
    allowed = await browser.new_page()
    await allowed.goto(dev_frontend.origin + "/")
    mine = await call_api(allowed, host.base_url, "GET", "/api/registrations/my", token)
    assert mine["ok"] and mine["status"] == 200 and mine["body"]["results"] == [], mine
    await page.close()
    await allowed.close()


async def test_the_existing_frontends_exact_traffic_is_answered_as_it_expects(
    browser: BrowserContext,
    dev_frontend: FrontendServer,
    start_host: Callable[..., LocalHostProcess],
    user_token: Callable[..., str],
) -> None:
    host = start_host(cors=dev_frontend.origin)
    token, admin = user_token(), user_token(admin=True)
    page = await browser.new_page()
    await page.goto(dev_frontend.origin + "/")
    base = host.base_url + "/api"
    tag = uuid.uuid4().hex[:12]
    # What its URL field accepts: whatever a browser's URL parser accepts.
    typed_url = f"https://mcp.example.com/mcp?team=data science&région=é&tag={tag}"

    def form(url: str) -> dict[str, Any]:
        return {
            "endpoint_url": url,
            "endpoint_name": "Frontend server",
            "description": "Registered through the frontend",
            "owner_contact": "frontend@example.com",
            "available_tools": [{"name": "search"}],
        }

    created = await call_like_the_frontend(page, base, "POST", "/registrations", token, form(typed_url))
    assert created["status"] == 201, created
    registration = created["body"]
    assert registration["status"] == "Pending"
    assert registration["endpoint_url"] == f"https://mcp.example.com/mcp?team=data%20science&r%C3%A9gion=%C3%A9&tag={tag}"
    registration_id = registration["registration_id"]

    # Its "is this URL free?" check and its pages.
    everything = await call_like_the_frontend(page, base, "GET", "/registrations?limit=1000", token)
    assert everything["status"] == 200 and everything["body"]["limit"] == 1000, everything
    assert registration_id in [item["registration_id"] for item in everything["body"]["results"]]
    mine = await call_like_the_frontend(page, base, "GET", "/registrations/my?limit=100", token)
    assert mine["status"] == 200 and [item["registration_id"] for item in mine["body"]["results"]] == [registration_id]
    pending = await call_like_the_frontend(page, base, "GET", "/registrations?status=Pending&limit=100", admin)
    assert pending["status"] == 200 and registration_id in [item["registration_id"] for item in pending["body"]["results"]]
    admin_everything = await call_like_the_frontend(page, base, "GET", "/registrations?limit=1000", admin)
    assert admin_everything["status"] == 200, admin_everything

    approved = await call_like_the_frontend(
        page, base, "PATCH", f"/registrations/{registration_id}/status", admin, {"status": "Approved"}
    )
    assert approved["status"] == 200 and approved["body"]["status"] == "Approved", approved
    browse = await call_like_the_frontend(page, base, "GET", "/registrations?status=Approved&limit=1000", token)
    assert browse["status"] == 200 and registration_id in [item["registration_id"] for item in browse["body"]["results"]]

    other = await call_like_the_frontend(page, base, "POST", "/registrations", token, form(f"https://other-{tag}.example.com/mcp"))
    assert other["status"] == 201, other
    rejected = await call_like_the_frontend(
        page, base, "PATCH", f"/registrations/{other['body']['registration_id']}/status", admin,
        {"status": "Rejected", "reason": "Rejected by admin"},
    )
    assert rejected["status"] == 200 and rejected["body"]["status"] == "Rejected", rejected

    deleted = await call_like_the_frontend(page, base, "DELETE", f"/registrations/{registration_id}", admin)
    assert deleted["status"] == 204 and deleted["body"] is None, deleted
    me = await call_like_the_frontend(page, base, "GET", "/users/me", token)
    assert me["status"] == 200 and {"user_id", "email", "display_name", "is_admin"} <= set(me["body"]), me
    health = await call_like_the_frontend(page, base, "GET", "/health", token)
    assert health["status"] == 200 and health["body"]["status"] == "healthy", health
    await page.close()
