"""The MCP Registry v0.1 API that Copilot clients read: approved registrations only, official shapes,
anonymous, CORS for any origin, cursors that carry their filter, names looked up encoded or not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.host import LocalHostProcess
from tests.support.mcp_registry import OFFICIAL, SERVERS, assert_valid_server
from tests.support.registrations import bearer, create_registration, decide, marker, unique_url


def unique_namespace() -> str:
    return f"com.example.mcp.test-{uuid.uuid4().hex[:10]}"  # below the registry's namespace


def assert_entry_shape(entry: dict[str, Any]) -> None:
    assert set(entry) == {"server", "_meta"}
    assert_valid_server(entry["server"])
    official = entry["_meta"][OFFICIAL]
    assert official["status"] == "active"
    assert official["isLatest"] is True
    assert isinstance(official["publishedAt"], str) and isinstance(official["updatedAt"], str)


def assert_registry_cors(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, OPTIONS"
    assert response.headers["access-control-allow-headers"] == "Authorization, Content-Type"


async def approved_server(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str, **overrides: Any
) -> dict[str, Any]:
    created = await create_registration(api, submitter_token, **overrides)
    decision = await decide(api, admin_token, created["registration_id"], "Approved")
    assert decision.status_code == 200, decision.text
    approved: dict[str, Any] = decision.json()
    return approved


async def latest(api: httpx.AsyncClient, name: str, *, encode: bool = True) -> httpx.Response:
    path_name = quote(name, safe="") if encode else name
    return await api.get(f"{SERVERS}/{path_name}/versions/latest")


async def walk(api: httpx.AsyncClient, first_url: str) -> list[list[str]]:
    """Follow nextCursor like VS Code: the cursor appended unencoded, `search` not resent."""
    pages: list[list[str]] = []
    response = await api.get(first_url)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([entry["server"]["name"] for entry in body["servers"]])
        assert body["metadata"]["count"] == len(body["servers"])
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            return pages
        response = await api.get(f"{SERVERS}?limit=50&version=latest&cursor={cursor}")


# ---------------------------------------------------------------- shapes


async def test_approved_server_is_served_in_the_official_detail_shape(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(
        api, submitter_token, admin_token, transport="sse", version="2.1.0", description="Tickets for ops"
    )

    response = await latest(api, approved["server_name"])

    assert response.status_code == 200, response.text
    entry = response.json()
    assert_entry_shape(entry)
    server = entry["server"]
    assert server["name"] == approved["server_name"]
    assert server["version"] == "2.1.0"
    assert server["description"] == "Tickets for ops"
    assert server["title"] == approved["endpoint_name"]
    assert server["remotes"] == [{"type": "sse", "url": approved["endpoint_url"]}]
    extras = server["_meta"]["com.example.mcp/registration"]
    assert extras["tools"] == [{"name": "get_forecast", "description": "Forecast for a city", "version": "1.2"}]
    assert entry["_meta"][OFFICIAL]["publishedAt"].startswith(approved["approved_at"][:19])


PUBLISHED_SERVER_KEYS = {"$schema", "name", "title", "description", "version", "remotes", "_meta"}


async def test_the_registry_publishes_only_what_clients_need_and_no_owner_contact_by_default(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    contact = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    approved = await approved_server(api, submitter_token, admin_token, owner_contact=contact)
    name = approved["server_name"]

    responses = [
        await latest(api, name),
        await api.get(f"{SERVERS}/{quote(name, safe='')}/versions"),
        await api.get(SERVERS, params={"search": name}),
    ]

    for response in responses:
        assert response.status_code == 200, response.text
        body = response.json()
        server = body["server"] if "server" in body else body["servers"][0]["server"]
        assert server["name"] == name
        assert set(server) <= PUBLISHED_SERVER_KEYS
        # The tools, and the last probe of the endpoint (never probed here; tests/test_verification_api.py).
        assert server["_meta"]["com.example.mcp/registration"] == {
            "tools": approved["available_tools"],
            "verification": {"status": "unverified"},
        }
        assert_valid_server(server)
        for personal in (contact, approved["submitter_email"], approved["approver_email"], approved["registration_id"]):
            assert personal not in response.text


async def test_owner_contact_is_published_when_the_setting_says_so(
    start_host: Callable[..., LocalHostProcess], api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    contact = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    approved = await approved_server(api, submitter_token, admin_token, owner_contact=contact)
    host = start_host(MCP_REGISTRY_PUBLISH_OWNER_CONTACT="true")

    async with host.client() as client:
        response = await latest(client, approved["server_name"])

    assert response.status_code == 200, response.text
    server = response.json()["server"]
    assert server["_meta"]["com.example.mcp/registration"]["ownerContact"] == contact
    assert_valid_server(server)


async def test_registry_serves_the_endpoint_url_in_the_canonical_form_it_was_stored_in(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = f"https://MCP-{tag}.example.com:8443/Path/%7Euser/sse?tenant=a&x=1"
    approved = await approved_server(api, submitter_token, admin_token, endpoint_url=url)

    response = await latest(api, approved["server_name"])

    served = response.json()["server"]["remotes"][0]["url"]
    assert served == approved["endpoint_url"] == f"https://mcp-{tag}.example.com:8443/Path/~user/sse?tenant=a&x=1"


async def test_long_description_is_cut_cleanly_to_100_characters(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    description = "Weather forecasts " + "and very detailed conditions " * 20
    approved = await approved_server(api, submitter_token, admin_token, description=description)

    server = (await latest(api, approved["server_name"])).json()["server"]

    assert 1 <= len(server["description"]) <= 100
    assert server["description"].endswith("…")
    assert description.startswith(server["description"][:-1].rstrip())
    assert_valid_server(server)


async def test_missing_description_falls_back_to_the_endpoint_name(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token, description=None)

    server = (await latest(api, approved["server_name"])).json()["server"]

    assert server["description"] == approved["endpoint_name"]


async def test_list_uses_the_official_envelope_and_every_server_validates(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    for index in range(3):
        await approved_server(api, submitter_token, admin_token, endpoint_name=f"Listed {tag} {index}")

    response = await api.get(SERVERS, params={"search": tag, "limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"servers", "metadata"}
    assert body["metadata"]["count"] == 2
    assert isinstance(body["metadata"]["nextCursor"], str)
    for entry in body["servers"]:
        assert_entry_shape(entry)


async def test_versions_list_holds_the_one_served_version(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token, version="3.0.0")

    response = await api.get(f"{SERVERS}/{quote(approved['server_name'], safe='')}/versions")

    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"count": 1}
    assert [entry["server"]["version"] for entry in body["servers"]] == ["3.0.0"]
    assert_entry_shape(body["servers"][0])


# ---------------------------------------------------------------- lookups by name and version


async def test_name_lookup_accepts_an_encoded_and_a_raw_slash(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token)

    encoded = await latest(api, approved["server_name"], encode=True)
    raw = await latest(api, approved["server_name"], encode=False)

    assert encoded.status_code == raw.status_code == 200
    assert encoded.json() == raw.json()


async def test_exact_version_is_found_and_an_unknown_version_is_404(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token, version="1.4.2")
    name = quote(approved["server_name"], safe="")

    found = await api.get(f"{SERVERS}/{name}/versions/1.4.2")
    missing = await api.get(f"{SERVERS}/{name}/versions/9.9.9")

    assert found.status_code == 200
    assert found.json()["server"]["version"] == "1.4.2"
    assert missing.status_code == 404
    assert missing.json()["error"]


async def test_a_server_named_x_slash_versions_still_routes(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    name = f"{unique_namespace()}/versions"
    await approved_server(api, submitter_token, admin_token, server_name=name)

    encoded = await latest(api, name, encode=True)
    raw = await latest(api, name, encode=False)
    versions = await api.get(f"{SERVERS}/{name}/versions")

    assert encoded.status_code == raw.status_code == versions.status_code == 200
    assert encoded.json()["server"]["name"] == raw.json()["server"]["name"] == name


async def test_unknown_server_is_404_with_the_registry_error_body(api: httpx.AsyncClient) -> None:
    response = await latest(api, f"{unique_namespace()}/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"] == "Server not found"
    assert_registry_cors(response)


@pytest.mark.parametrize(
    "path",
    ["com.example%2Fonly", "com.example/only", "com.example/only/latest", "com.example/only/versions/"],
    ids=["encoded-name-only", "raw-name-only", "no-versions-segment", "empty-version"],
)
async def test_paths_that_are_not_registry_resources_are_404(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(f"{SERVERS}/{path}")

    assert response.status_code == 404


# ---------------------------------------------------------------- only approved registrations


async def test_pending_registration_is_absent_until_approved(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    created = await create_registration(api, submitter_token, endpoint_name=f"Pending {tag}")

    before_lookup = await latest(api, created["server_name"])
    before_list = (await api.get(SERVERS, params={"search": tag})).json()
    await decide(api, admin_token, created["registration_id"], "Approved")
    after_lookup = await latest(api, created["server_name"])
    after_list = (await api.get(SERVERS, params={"search": tag})).json()

    assert before_lookup.status_code == 404
    assert before_list["servers"] == []
    assert after_lookup.status_code == 200
    assert [entry["server"]["name"] for entry in after_list["servers"]] == [created["server_name"]]


async def test_rejected_registration_is_404_and_not_listed(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    created = await create_registration(api, submitter_token, endpoint_name=f"Rejected {tag}")
    await decide(api, admin_token, created["registration_id"], "Rejected", reason="no")

    lookup = await latest(api, created["server_name"])
    listed = (await api.get(SERVERS, params={"search": tag})).json()

    assert lookup.status_code == 404
    assert listed["servers"] == []


async def test_deleting_an_approved_registration_removes_it(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    approved = await approved_server(api, submitter_token, admin_token, endpoint_name=f"Deleted {tag}")

    deleted = await api.delete(f"/api/registrations/{approved['registration_id']}", headers=bearer(admin_token))
    lookup = await latest(api, approved["server_name"])
    listed = (await api.get(SERVERS, params={"search": tag})).json()

    assert deleted.status_code == 204
    assert lookup.status_code == 404
    assert listed["servers"] == []


# ---------------------------------------------------------------- paging and filters


@pytest.fixture(scope="module")
async def two_hundred_fifty_approved(
    api_host: LocalHostProcess, issuer: Any
) -> AsyncIterator[tuple[str, set[str]]]:
    """250 approved servers sharing a search tag (created through the API), for the cursor walks."""
    tag = marker()
    submitter, admin = issuer.token(), issuer.token(admin_role="Admin")
    limit = asyncio.Semaphore(16)
    async with api_host.client(timeout=60) as client:

        async def one(index: int) -> str:
            async with limit:
                approved = await approved_server(
                    client, submitter, admin, endpoint_name=f"Walk {tag} {index:03d}", endpoint_url=unique_url()
                )
                return str(approved["server_name"])

        names = await asyncio.gather(*(one(index) for index in range(250)))
    yield tag, set(names)


async def test_cursor_walk_with_a_search_returns_each_server_exactly_once(
    api: httpx.AsyncClient, two_hundred_fifty_approved: tuple[str, set[str]]
) -> None:
    tag, names = two_hundred_fifty_approved

    pages = await walk(api, f"{SERVERS}?limit=50&version=latest&search={tag}")

    walked = [name for page in pages for name in page]
    assert [len(page) for page in pages] == [50, 50, 50, 50, 50]
    assert sorted(walked) == sorted(names)


async def test_unfiltered_cursor_walk_returns_each_server_exactly_once_in_name_order(
    api: httpx.AsyncClient, two_hundred_fifty_approved: tuple[str, set[str]]
) -> None:
    _, names = two_hundred_fifty_approved

    pages = await walk(api, f"{SERVERS}?limit=50&version=latest")

    walked = [name for page in pages for name in page]
    assert walked == sorted(walked)
    assert len(walked) == len(set(walked))
    assert names <= set(walked)


async def test_vscode_version_probe_gets_one_server_page(
    api: httpx.AsyncClient, two_hundred_fifty_approved: tuple[str, set[str]]
) -> None:
    response = await api.get(f"{SERVERS}?limit=1")

    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["count"] == len(body["servers"]) == 1
    assert body["metadata"]["nextCursor"]


VSCODE = {"Origin": "vscode-file://vscode-app"}


async def test_the_clients_exact_requests_are_answered_as_they_parse_them(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    # VS Code: the version probe, the first page (search sent, encodeURIComponent), the lookup by
    # encodeURIComponent(name), and Chromium's revalidation of its cached lookup; Copilot CLI: the lookup with
    # `Accept: application/json` and no Authorization.
    tag = marker()
    approved = await approved_server(api, submitter_token, admin_token, endpoint_name=f"Client {tag}")
    lookup = f"{SERVERS}/{quote(approved['server_name'], safe='')}/versions/latest"

    probe = await api.get(f"{SERVERS}?limit=1", headers=VSCODE)
    page = await api.get(f"{SERVERS}?limit=50&version=latest&search={quote(tag, safe='')}", headers=VSCODE)
    found = await api.get(lookup, headers=VSCODE)
    revalidated = await api.get(lookup, headers={**VSCODE, "If-None-Match": found.headers["ETag"]})
    copilot_cli = await api.get(lookup, headers={"Accept": "application/json"})

    for response in (probe, page, found, copilot_cli):
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "*"
    for entry in [*probe.json()["servers"], *page.json()["servers"], found.json(), copilot_cli.json()]:
        # What VS Code's v0.1 serializer needs: non-empty name, description and version, `_meta` an object.
        assert all(isinstance(entry["server"][key], str) and entry["server"][key] for key in ("name", "description", "version"))
        assert isinstance(entry["_meta"], dict)
    assert isinstance(page.json()["metadata"], dict)
    assert [entry["server"]["name"] for entry in page.json()["servers"]] == [approved["server_name"]]
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["access-control-allow-origin"] == "*"


async def test_updated_since_filters_and_survives_the_cursor(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    old = await approved_server(api, submitter_token, admin_token, endpoint_name=f"Old {tag}")
    fresh = [await approved_server(api, submitter_token, admin_token, endpoint_name=f"New {tag} {i}") for i in range(3)]
    after_old = quote(old["updated_at"], safe="")

    all_pages = await walk(api, f"{SERVERS}?limit=1&search={tag}&updated_since=2000-01-01T00:00:00Z")
    recent_pages = await walk(api, f"{SERVERS}?limit=1&search={tag}&updated_since={after_old}")

    assert sorted(name for page in all_pages for name in page) == sorted(
        [old["server_name"], *(server["server_name"] for server in fresh)]
    )
    assert sorted(name for page in recent_pages for name in page) == sorted(server["server_name"] for server in fresh)


async def test_exact_version_filter_lists_only_that_version(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    wanted = await approved_server(api, submitter_token, admin_token, endpoint_name=f"V {tag} a", version="7.7.7")
    await approved_server(api, submitter_token, admin_token, endpoint_name=f"V {tag} b", version="1.0.0")

    response = await api.get(SERVERS, params={"search": tag, "version": "7.7.7"})

    assert [entry["server"]["name"] for entry in response.json()["servers"]] == [wanted["server_name"]]


async def test_search_treats_like_wildcards_literally(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    tag = marker()
    literal = await approved_server(api, submitter_token, admin_token, endpoint_name=f"Pct {tag} 100%_done")
    await approved_server(api, submitter_token, admin_token, endpoint_name=f"Pct {tag} 100xxdone")

    response = await api.get(SERVERS, params={"search": f"{tag} 100%_"})

    assert [entry["server"]["name"] for entry in response.json()["servers"]] == [literal["server_name"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=not-a-cursor!", "cursor"),
        ("cursor=e30", "cursor"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2025-01-01T00:00:00", "updated_since"),
    ],
)
async def test_bad_list_parameters_are_400_with_the_registry_error_body(
    api: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await api.get(f"{SERVERS}?{query}")

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert_registry_cors(response)


async def test_limit_above_100_is_capped(
    api: httpx.AsyncClient, two_hundred_fifty_approved: tuple[str, set[str]]
) -> None:
    response = await api.get(f"{SERVERS}?limit=1000")

    assert response.status_code == 200
    assert response.json()["metadata"]["count"] == 100


# ---------------------------------------------------------------- anonymous, CORS, caching, redirects


async def test_registry_routes_need_no_token_and_send_cors_and_cache_headers(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token)

    listed = await api.get(SERVERS, headers={"Origin": "vscode-file://vscode-app"})
    found = await latest(api, approved["server_name"])

    for response in (listed, found):
        assert response.status_code == 200
        assert "www-authenticate" not in response.headers
        assert response.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
        assert response.headers["content-type"].startswith("application/json")


async def test_options_is_answered_by_the_function_without_a_token(start_host: Callable[..., LocalHostProcess]) -> None:
    host = start_host(cors="")  # no host CORS: the function itself answers OPTIONS
    async with host.client() as client:
        response = await client.options(
            SERVERS, headers={"Origin": "vscode-file://vscode-app", "Access-Control-Request-Method": "GET"}
        )

    assert response.status_code == 204
    assert_registry_cors(response)


async def test_preflight_from_vscode_is_answered_by_the_any_origin_host_cors(
    start_host: Callable[..., LocalHostProcess],
) -> None:
    host = start_host(cors="*")  # the deployed platform CORS choice (README.md, CORS)
    async with host.client() as client:
        preflight = await client.options(
            f"{SERVERS}/com.example%2Fx/versions/latest",
            headers={"Origin": "vscode-file://vscode-app", "Access-Control-Request-Method": "GET"},
        )
        listed = await client.get(SERVERS, headers={"Origin": "vscode-file://vscode-app"})

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert listed.headers["access-control-allow-origin"] == "*"


async def test_trailing_slash_is_served_without_a_redirect(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{SERVERS}/?limit=1", follow_redirects=False)

    assert response.status_code == 200
    assert "servers" in response.json()


async def test_registry_works_anonymously_with_easyauth_on_and_nothing_else_became_anonymous(
    start_host: Callable[..., LocalHostProcess], submitter_token: str
) -> None:
    host = start_host(EASYAUTH_REQUIRED="true")
    async with host.client() as client:
        registry = await client.get(SERVERS, params={"limit": 1})
        lookup = await client.get(f"{SERVERS}/com.example%2Fmissing/versions/latest")
        registrations = await client.get("/api/registrations")
        token_without_principal = await client.get("/api/registrations", headers=bearer(submitter_token))
        allowlist = await client.get("/api/v0.1/allowlist", headers=bearer(submitter_token))

    assert registry.status_code == 200
    assert lookup.status_code == 404
    assert registrations.status_code == 401
    assert token_without_principal.status_code == 401
    assert allowlist.status_code == 401


async def test_registry_can_be_turned_off(start_host: Callable[..., LocalHostProcess]) -> None:
    host = start_host(MCP_REGISTRY_ENABLED="false")
    async with host.client() as client:
        response = await client.get(SERVERS)

    assert response.status_code == 404


# ---------------------------------------------------------------- the allowlist export


async def test_allowlist_lists_approved_urls_for_admins_only(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    approved = await approved_server(api, submitter_token, admin_token)
    pending = await create_registration(api, submitter_token)

    as_admin = await api.get("/api/v0.1/allowlist", headers=bearer(admin_token))
    as_user = await api.get("/api/v0.1/allowlist", headers=bearer(submitter_token))

    assert as_admin.status_code == 200
    urls = [entry["serverUrl"] for entry in as_admin.json()["allowedMcpServers"]]
    assert approved["endpoint_url"] in urls
    assert pending["endpoint_url"] not in urls
    assert as_user.status_code == 403


# ---------------------------------------------------------------- server names on registrations


async def test_created_registration_gets_a_derived_name_version_and_transport(
    api: httpx.AsyncClient, submitter_token: str
) -> None:
    created = await create_registration(api, submitter_token, endpoint_name="  Ops Tickets & Alerts!  ")

    assert created["server_name"].startswith("com.example.mcp/ops-tickets-alerts")
    assert created["version"] == "1.0.0"
    assert created["transport"] == "streamable-http"


async def test_derived_names_are_made_unique(api: httpx.AsyncClient, submitter_token: str) -> None:
    name = f"Same name {marker()}"
    first = await create_registration(api, submitter_token, endpoint_name=name)
    second = await create_registration(api, submitter_token, endpoint_name=name)

    assert first["server_name"] != second["server_name"]
    assert second["server_name"].startswith(first["server_name"] + "-")


async def test_explicit_name_taken_is_409_naming_the_holder(api: httpx.AsyncClient, submitter_token: str) -> None:
    name = f"{unique_namespace()}/tickets"
    holder = await create_registration(api, submitter_token, server_name=name)

    response = await api.post(
        "/api/registrations",
        json={
            "endpoint_url": unique_url(),
            "endpoint_name": "Other tickets",
            "owner_contact": "ops@example.com",
            "available_tools": [],
            "server_name": name,
        },
        headers=bearer(submitter_token),
    )

    assert response.status_code == 409
    assert response.json()["error_code"] == "DUPLICATE_SERVER_NAME"
    assert response.json()["registration_id"] == holder["registration_id"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("server_name", "no-slash"),
        ("server_name", "a/b/c"),
        ("server_name", "ab"),
        ("server_name", "com.example/" + "x" * 200),
        ("server_name", "com example/x"),
        ("version", "^1.2.3"),
        ("version", "~1.2"),
        ("version", ">=1.0.0"),
        ("version", "1.x"),
        ("version", "1.*"),
        ("version", "latest"),
        ("version", ""),
        ("transport", "websocket"),
    ],
)
async def test_invalid_registry_fields_are_422(
    api: httpx.AsyncClient, submitter_token: str, field: str, value: str
) -> None:
    response = await api.post(
        "/api/registrations",
        json={
            "endpoint_url": unique_url(),
            "endpoint_name": "Registry fields",
            "owner_contact": "ops@example.com",
            "available_tools": [],
            field: value,
        },
        headers=bearer(submitter_token),
    )

    assert response.status_code == 422
    assert field in response.json()["field_errors"]


async def test_name_can_change_while_pending_and_is_frozen_once_approved(
    api: httpx.AsyncClient, submitter_token: str, admin_token: str
) -> None:
    created = await create_registration(api, submitter_token)
    renamed = f"{unique_namespace()}/renamed"
    path = f"/api/registrations/{created['registration_id']}"

    while_pending = await api.patch(path, json={"server_name": renamed}, headers=bearer(submitter_token))
    approval = await decide(api, admin_token, created["registration_id"], "Approved", if_match=while_pending.headers["ETag"])
    assert approval.status_code == 200, approval.text
    after_approval = await api.patch(
        path, json={"server_name": f"{unique_namespace()}/again"}, headers=bearer(admin_token)
    )
    version_bump = await api.patch(path, json={"version": "1.1.0"}, headers=bearer(admin_token))

    assert while_pending.status_code == 200
    assert while_pending.json()["server_name"] == renamed
    assert after_approval.status_code == 422
    assert "server_name" in after_approval.json()["field_errors"]
    assert version_bump.status_code == 200
    assert (await latest(api, renamed)).json()["server"]["version"] == "1.1.0"
