"""The local Functions host (devtools.local_host): routing, constraints, methods, query and header
handling, CORS and bodies — over real HTTP through `python -m devtools.local_host`, and in-process for
the routing table itself."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devtools.local_host import (
    LocalFunctionsHost,
    RouteMatcher,
    discover_functions,
    parse_cors_origins,
    parse_query_string,
)
from devtools.local_settings import load_local_settings
from shared.http import MAX_BODY_BYTES
from tests.support.echo_app import make_app
from tests.support.host import ROOT, LocalHostProcess, host_environment
from tests.support.issuer import TestIssuer, bearer
from tests.support.registrations import registration_body

ALLOWED_ORIGIN = "http://localhost:5173"  # the api_host fixture's CORS, like local.settings.json.example
OTHER_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def echo_host(database_url: str, issuer: TestIssuer, log_dir: Path) -> Iterator[LocalHostProcess]:
    """`python -m devtools.local_host --app tests.support.echo_app:app`, a real process on a real port."""
    host = LocalHostProcess(
        host_environment(database_url, issuer),
        log_path=log_dir / "echo-host.log",
        app="tests.support.echo_app:app",
    )
    yield host
    host.stop()


@pytest.fixture
async def echo(echo_host: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with echo_host.client() as client:
        yield client


def _in_process(host: LocalFunctionsHost) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://127.0.0.1:7071")


# ---------------------------------------------------------------- route constraints


@pytest.mark.parametrize("literal_first", [False, True], ids=["guid-route-first", "literal-route-first"])
def test_registrations_my_and_non_guid_ids_never_reach_the_guid_function(literal_first: bool) -> None:
    host = LocalFunctionsHost(make_app(literal_first=literal_first), route_prefix="api")
    registration_id = str(uuid.uuid4())

    function, values, _ = host.match("/api/registrations/my", "GET")
    assert function is not None and function.name == "my_registrations" and values == {}

    function, values, _ = host.match(f"/api/registrations/{registration_id}", "GET")
    assert function is not None and function.name == "registration_by_id"
    assert values == {"registration_id": registration_id}

    for not_a_guid in ["not-a-guid", "123", registration_id[:-1], registration_id + "0", "my2", "MY-"]:
        function, _, allowed = host.match(f"/api/registrations/{not_a_guid}", "GET")
        assert function is None and allowed == set(), not_a_guid


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", True),
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", True),
        ("3f2504e04f8911d39a0c0305e82c3301", True),
        ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", True),
        ("(3f2504e0-4f89-11d3-9a0c-0305e82c3301)", True),
        ("3f2504e0-4f8911d3-9a0c-0305e82c3301", False),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c330", False),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301x", False),
        ("g f2504e0-4f89-11d3-9a0c-0305e82c330", False),
        ("{------------------------------------}", False),
        ("my", False),
    ],
)
def test_guid_constraint_accepts_exactly_the_forms_dotnet_parses(value: str, accepted: bool) -> None:
    template = RouteMatcher.compile("api", "things/{thing_id:guid}")
    assert (template.match(f"api/things/{value}") is not None) is accepted


def test_literal_segments_match_case_insensitively_and_values_keep_their_case() -> None:
    template = RouteMatcher.compile("api", "Users/{name:alpha}/items/{item_id:int}")
    assert template.match("API/users/Alice/ITEMS/42") == {"name": "Alice", "item_id": "42"}
    assert template.match("api/users/Alice/items/x42") is None
    assert template.match("api/users/Al1ce/items/42") is None
    assert template.match("api/users/Alice/items/42/") is not None
    assert template.match("api/users/Alice/items/42/more") is None


def test_optional_and_catch_all_parameters() -> None:
    optional = RouteMatcher.compile("api", "products/{category:alpha}/{product_id:int?}")
    assert optional.match("api/products/tools") == {"category": "tools"}
    assert optional.match("api/products/tools/7") == {"category": "tools", "product_id": "7"}
    catch_all = RouteMatcher.compile("api", "files/{*path}")
    assert catch_all.match("api/files/a/b/c.txt") == {"path": "a/b/c.txt"}


def test_route_values_are_percent_decoded_except_an_encoded_slash() -> None:
    template = RouteMatcher.compile("api", "servers/{server_name}")
    assert template.match("api/servers/io.github%2Fweather%20tool") == {"server_name": "io.github%2Fweather tool"}


def test_discovery_reads_routes_and_methods_from_the_app_in_registration_order() -> None:
    functions = discover_functions(make_app(), "api")
    assert [function.name for function in functions] == [
        "registration_by_id",
        "my_registrations",
        "echo",
        "echo_raw",
    ]
    by_name = {function.name: function for function in functions}
    assert by_name["echo_raw"].methods == frozenset({"POST", "PUT"})
    assert by_name["echo"].wants_context and not by_name["echo_raw"].wants_context
    assert by_name["registration_by_id"].template.template == "api/registrations/{registration_id:guid}"


# ---------------------------------------------------------------- the same rules over real HTTP


async def test_constraints_over_http(echo: httpx.AsyncClient) -> None:
    registration_id = str(uuid.uuid4())
    mine = await echo.get("/api/registrations/my")
    assert mine.status_code == 200 and mine.json()["function"] == "my_registrations"
    upper = await echo.get("/API/Registrations/MY")
    assert upper.status_code == 200 and upper.json()["function"] == "my_registrations"
    one = await echo.get(f"/api/registrations/{registration_id}")
    assert one.json()["function"] == "registration_by_id"
    assert one.json()["route_params"] == {"registration_id": registration_id}
    not_a_guid = await echo.get("/api/registrations/not-a-guid")
    assert not_a_guid.status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/nope", "/nope", "/api", "/", "/health", "/api/registrations/my/extra", "/api/echo/raw/x"]
)
async def test_unknown_paths_are_404(echo: httpx.AsyncClient, path: str) -> None:
    response = await echo.get(path)
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


async def test_a_wrong_method_is_refused_with_405_and_allow(echo: httpx.AsyncClient) -> None:
    response = await echo.delete("/api/registrations/my")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error_code"] == "METHOD_NOT_ALLOWED"
    raw = await echo.get("/api/echo/raw")
    assert raw.status_code == 405 and raw.headers["allow"] == "POST, PUT"


async def test_query_string_is_decoded_into_params_like_the_host(echo: httpx.AsyncClient) -> None:
    query = (
        "tag=a&tag=b&tag=c&q=hello+world&url=https%3A%2F%2Fmcp.example.com%2Fx%3Fa%3D1%26b%3D2"
        "&plus=1%2B1&accent=caf%C3%A9&empty=&flag&sp%20ace=v"
    )
    response = await echo.get(f"/api/echo?{query}")
    assert response.status_code == 200
    assert response.json()["params"] == {
        "tag": "a,b,c",
        "q": "hello world",
        "url": "https://mcp.example.com/x?a=1&b=2",
        "plus": "1+1",
        "accent": "café",
        "empty": "",
        "flag": "",
        "sp ace": "v",
    }
    assert response.json()["url"].endswith(f"/api/echo?{query}")


def test_parse_query_string_joins_repeats_with_a_comma() -> None:
    assert parse_query_string("a=1&a=2&b=x+y&c=%26%3D&&") == {"a": "1,2", "b": "x y", "c": "&="}


async def test_headers_are_case_insensitive_and_repeats_are_joined(echo: httpx.AsyncClient) -> None:
    response = await echo.get(
        "/api/echo",
        headers=[("X-Test-Header", "first"), ("x-test-header", "second"), ("X-Other", "Value With Case")],
    )
    body = response.json()
    assert body["header_lookups"] == dict.fromkeys(body["header_lookups"], "first,second")
    assert body["headers"]["x-other"] == "Value With Case"


async def test_the_function_gets_an_invocation_context(echo: httpx.AsyncClient) -> None:
    body = (await echo.get("/api/echo")).json()
    assert body["context_function_name"] == "echo"
    assert uuid.UUID(body["invocation_id"])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        bytes(range(256)) * 4,
        b'{"name": "caf\xc3\xa9", "nul": "\\u0000"}\r\n\r\n',
        b"\xff\xfe\x00not utf-8\x80",
        os.urandom(MAX_BODY_BYTES),
    ],
    ids=["empty", "every-byte", "json-crlf", "invalid-utf8", "64KiB-random"],
)
async def test_request_body_reaches_the_function_byte_for_byte(echo: httpx.AsyncClient, body: bytes) -> None:
    described = await echo.post("/api/echo", content=body, headers={"Content-Type": "application/octet-stream"})
    assert base64.b64decode(described.json()["body_b64"]) == body
    echoed = await echo.put("/api/echo/raw", content=body, headers={"Content-Type": "application/octet-stream"})
    assert echoed.status_code == 200
    assert echoed.content == body
    assert echoed.headers["content-type"] == "application/octet-stream"


async def test_chunked_request_body_is_reassembled(echo: httpx.AsyncClient) -> None:
    parts = [os.urandom(7000) for _ in range(5)]

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    response = await echo.post("/api/echo/raw", content=stream())
    assert response.content == b"".join(parts)


# ---------------------------------------------------------------- the body limit (API.md: 413 over 64 KiB)


def assert_payload_too_large(status_line: bytes, body: bytes) -> None:
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert json.loads(body)["error_code"] == "PAYLOAD_TOO_LARGE"


async def test_a_body_over_64_kib_is_refused_with_413_in_the_contracts_shape(echo: httpx.AsyncClient) -> None:
    at_limit = await echo.post("/api/echo/raw", content=b"x" * MAX_BODY_BYTES)
    assert at_limit.status_code == 200 and len(at_limit.content) == MAX_BODY_BYTES

    response = await echo.post("/api/echo/raw", content=b"x" * (MAX_BODY_BYTES + 1))

    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"


async def _raw_exchange(host: LocalHostProcess, head: bytes, body_parts: list[bytes]) -> tuple[bytes, bytes]:
    """Send a request head and some body (never the rest), then read the answer: (status line, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            await writer.drain()
        status_line = await reader.readline()
        headers = await reader.readuntil(b"\r\n\r\n")
        declared = re.search(rb"(?im)^content-length:\s*(\d+)", headers)
        if declared is not None:
            return status_line, await reader.readexactly(int(declared.group(1)))
        body = b""  # chunked
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readline()
        return status_line, body
    finally:
        writer.close()


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(echo_host: LocalHostProcess) -> None:
    head = b"POST /api/echo/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"

    # 1 KiB of a declared 100 MiB: the answer comes although the rest never does (nothing was waited for).
    status_line, body = await asyncio.wait_for(_raw_exchange(echo_host, head, [b"x" * 1024]), timeout=30)

    assert_payload_too_large(status_line, body)


async def test_a_chunked_body_is_refused_at_the_chunk_that_crosses_the_limit(echo_host: LocalHostProcess) -> None:
    head = b"POST /api/echo/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n" % (16 * 1024) + b"x" * (16 * 1024) + b"\r\n"

    # Five 16 KiB chunks and no final chunk: the body has not ended when the 413 comes.
    status_line, body = await asyncio.wait_for(_raw_exchange(echo_host, head, [chunk] * 5), timeout=30)

    assert_payload_too_large(status_line, body)


# ---------------------------------------------------------------- Location: the configured base, not Host


async def test_location_is_built_from_the_address_the_host_listens_on_not_the_host_header(
    api_host: LocalHostProcess, api: httpx.AsyncClient, user_token: Callable[..., str]
) -> None:
    headers = {**bearer(user_token()), "Host": "evil.example.net"}

    response = await api.post("/api/registrations", json=registration_body(), headers=headers)

    assert response.status_code == 201, response.text
    registration_id = response.json()["registration_id"]
    assert response.headers["Location"] == f"{api_host.base_url}/api/registrations/{registration_id}"


async def test_location_is_built_from_local_host_base_url_when_set(
    start_host: Callable[..., LocalHostProcess], user_token: Callable[..., str]
) -> None:
    host = start_host(LOCAL_HOST_BASE_URL="https://registry.example.test/")
    async with host.client() as client:
        headers = {**bearer(user_token()), "Host": "evil.example.net"}
        response = await client.post("/api/registrations", json=registration_body(), headers=headers)

    assert response.status_code == 201, response.text
    registration_id = response.json()["registration_id"]
    assert response.headers["Location"] == f"https://registry.example.test/api/registrations/{registration_id}"


# ---------------------------------------------------------------- the real app over real HTTP


async def test_real_app_health_route_literals_are_case_insensitive(api: httpx.AsyncClient) -> None:
    for path in ["/api/health", "/API/HEALTH", "/Api/Health/"]:
        response = await api.get(path)
        assert response.status_code == 200, path
        assert response.json()["status"] == "healthy"


async def test_real_app_refuses_wrong_method_and_unknown_path(api: httpx.AsyncClient) -> None:
    wrong = await api.post("/api/health")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
    unknown = await api.get("/api/does-not-exist")
    assert unknown.status_code == 404
    no_prefix = await api.get("/health")
    assert no_prefix.status_code == 404


# ---------------------------------------------------------------- CORS (Host.CORS)


def _preflight_headers(origin: str, method: str = "GET") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_preflight_from_an_allowed_origin_is_answered(api: httpx.AsyncClient) -> None:
    response = await api.options("/api/health", headers=_preflight_headers(ALLOWED_ORIGIN))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_preflight_from_another_origin_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.options("/api/health", headers=_preflight_headers(OTHER_ORIGIN))
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-methods" not in response.headers


async def test_responses_carry_cors_headers_only_for_allowed_origins(api: httpx.AsyncClient) -> None:
    allowed = await api.get("/api/health", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "origin" in allowed.headers["vary"].lower()
    other = await api.get("/api/health", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in other.headers
    none = await api.get("/api/health")
    assert "access-control-allow-origin" not in none.headers


async def test_cors_origins_come_from_the_command_line(start_host: Callable[..., LocalHostProcess]) -> None:
    host = start_host(cors="https://app.example.com, https://other.example.com/")
    async with host.client() as client:
        ok = await client.options("/api/health", headers=_preflight_headers("https://other.example.com"))
        assert ok.headers["access-control-allow-origin"] == "https://other.example.com"
        refused = await client.options("/api/health", headers=_preflight_headers(ALLOWED_ORIGIN))
        assert "access-control-allow-origin" not in refused.headers


async def test_wildcard_cors_and_no_cors_in_process() -> None:
    wildcard = LocalFunctionsHost(make_app(), cors_origins=parse_cors_origins("*"))
    async with _in_process(wildcard) as client:
        response = await client.options("/api/echo", headers=_preflight_headers(OTHER_ORIGIN, "POST"))
        assert response.status_code == 204 and response.headers["access-control-allow-origin"] == "*"
    without = LocalFunctionsHost(make_app())
    async with _in_process(without) as client:
        response = await client.options("/api/echo", headers=_preflight_headers(ALLOWED_ORIGIN))
        # No Host.CORS: the request goes to routing, where OPTIONS is not one of echo's methods.
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers


# ---------------------------------------------------------------- CORS on the MCP Registry routes (as on Azure)

REGISTRY_CLIENT_ORIGINS = ("vscode-file://vscode-app", "https://github.com")


@pytest.mark.parametrize("origin", REGISTRY_CLIENT_ORIGINS)
async def test_a_registry_preflight_from_any_origin_gets_star(api: httpx.AsyncClient, origin: str) -> None:
    response = await api.options("/api/v0.1/servers", headers=_preflight_headers(origin))
    assert 200 <= response.status_code < 300
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("origin", REGISTRY_CLIENT_ORIGINS)
async def test_a_registry_answer_to_any_origin_carries_star(api: httpx.AsyncClient, origin: str) -> None:
    response = await api.get("/api/v0.1/servers?limit=1", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("origin", (*REGISTRY_CLIENT_ORIGINS, OTHER_ORIGIN))
async def test_a_preflight_from_a_foreign_origin_to_the_registrations_api_is_still_refused(
    api: httpx.AsyncClient, origin: str
) -> None:
    sentinel = await api.options("/api/registrations", headers=_preflight_headers(ALLOWED_ORIGIN, "POST"))
    assert sentinel.headers["access-control-allow-origin"] == ALLOWED_ORIGIN  # the SPA's origin is let in

    response = await api.options("/api/registrations", headers=_preflight_headers(origin, "POST"))
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-methods" not in response.headers


async def test_the_local_run_and_infra_answer_registry_preflights_alike() -> None:
    from function_app import app
    from tests.test_infra import FUNCTION_APP, resolve, site

    # Azure: platform CORS with infra's default origins, credentials off, answers every route.
    azure_cors = site()["properties"]["siteConfig"]["cors"]
    azure_origins = resolve(FUNCTION_APP, azure_cors["allowedOrigins"])
    assert azure_cors["supportCredentials"] is False

    def azure_allows(origin: str) -> str | None:
        return "*" if "*" in azure_origins else (origin if origin in azure_origins else None)

    # Locally: the host built from the committed example settings (Host.CORS is the SPA's allow-list).
    example = load_local_settings(ROOT / "local.settings.json.example")["Host"]
    assert str(example.get("CORSCredentials", "false")).lower() == "false"
    local = LocalFunctionsHost(app, route_prefix="api", cors_origins=parse_cors_origins(example["CORS"]))
    registry_routes = [f.template.template for f in local.functions if f.template.template.startswith("api/v0.1/")]
    assert registry_routes  # the app serves registry routes (servers, allowlist)

    async with _in_process(local) as client:
        for route in registry_routes:
            path = "/" + route.replace("{*rest}", "io.example/weather")
            for origin in (*REGISTRY_CLIENT_ORIGINS, OTHER_ORIGIN, *parse_cors_origins(example["CORS"])):
                response = await client.options(path, headers=_preflight_headers(origin))
                assert 200 <= response.status_code < 300, (path, origin)
                assert response.headers.get("access-control-allow-origin") == azure_allows(origin) == "*", (
                    path,
                    origin,
                )
                assert "access-control-allow-credentials" not in response.headers
        # Elsewhere the local run is narrower than Azure's '*' (the SPA's origins only), never wider.
        for origin in parse_cors_origins(example["CORS"]):
            response = await client.options("/api/registrations", headers=_preflight_headers(origin, "POST"))
            assert response.headers["access-control-allow-origin"] == origin
            assert azure_allows(origin) is not None


async def test_host_cors_replaces_cors_headers_set_by_a_function() -> None:
    import azure.functions as func

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="leaky", methods=["GET"])
    async def leaky(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("x", headers={"Access-Control-Allow-Origin": "*"})

    host = LocalFunctionsHost(app, cors_origins=(ALLOWED_ORIGIN,))
    async with _in_process(host) as client:
        response = await client.get("/api/leaky", headers={"Origin": ALLOWED_ORIGIN})
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
