"""The anonymous MCP Registry routes under hostile input: every parameter, path and cursor is validated with
the same bounds, and malformed input is a 400/404 in the registry's error shape with CORS, never a 5xx."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.host import LocalHostProcess
from tests.support.mcp_registry import SERVERS
from tests.support.registrations import create_registration, decide, marker


def forged_cursor(state: Any) -> str:
    raw = state.encode("utf-8", "surrogatepass") if isinstance(state, str) else json.dumps(state).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def assert_registry_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert body["error"] and body["error_code"] == {400: "INVALID_QUERY", 404: "NOT_FOUND"}[status]


@pytest.mark.parametrize(
    "updated_since",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-11-11T10:00:00", "0.5", "yesterday"],
)
async def test_an_updated_since_the_database_cannot_hold_or_without_an_offset_is_400(
    api: httpx.AsyncClient, updated_since: str
) -> None:
    response = await api.get(f"{SERVERS}?updated_since={quote(updated_since, safe='')}")

    assert_registry_error(response, 400)


@pytest.mark.parametrize(
    "cursor",
    [
        forged_cursor('{"after":"\\ud800"}'),
        forged_cursor('{"after":"a","search":"\\udfff"}'),
        forged_cursor("[" * 700),
        forged_cursor({"after": "a", "search": "x" * 201}),
        forged_cursor({"after": "a", "updated_since": "0001-01-01T00:00:00+01:00"}),
        forged_cursor({"after": "a", "version": "\u0000"}),
        forged_cursor({"after": 5}),
        forged_cursor({"after": "a", "limit": 1000}),
        forged_cursor(["after"]),
        "not base64!",
        "x",
    ],
)
async def test_a_forged_cursor_is_400(api: httpx.AsyncClient, cursor: str) -> None:
    response = await api.get(f"{SERVERS}?cursor={cursor}")

    assert_registry_error(response, 400)


async def test_a_cursor_carrying_a_search_longer_than_the_search_limit_is_refused_before_any_query(
    api: httpx.AsyncClient,
) -> None:
    # The attack: a 6,000-character search inside a cursor, where `search` itself is capped at 200.
    long_search = forged_cursor({"after": "", "search": "ab" * 3000})
    deep = "[" * 2250

    for cursor in (long_search, forged_cursor(deep)):
        response = await api.get(f"{SERVERS}?cursor={cursor}")
        assert_registry_error(response, 400)


async def test_a_genuine_cursor_still_walks_to_the_next_page_with_its_search(
    api: httpx.AsyncClient, user_token: Callable[..., str]
) -> None:
    admin, tag = user_token(admin=True), marker()
    names = []
    for n in range(2):
        created = await create_registration(api, admin, endpoint_name=f"{tag} {n}")
        assert (await decide(api, admin, created["registration_id"], "Approved")).status_code == 200
        names.append(created["server_name"])
    first = await api.get(SERVERS, params={"limit": 1, "search": tag})

    second = await api.get(f"{SERVERS}?limit=1&cursor={first.json()['metadata']['nextCursor']}")

    assert second.status_code == 200, second.text
    assert [entry["server"]["name"] for entry in first.json()["servers"] + second.json()["servers"]] == sorted(names)


@pytest.mark.parametrize(
    "path",
    [
        "/com.example%2F" + "x" * 5000 + "/versions/latest",
        "/com.example%2Fa%00b/versions/latest",
        "/com.example%2F%ED%A0%80/versions/latest",
        "/com.example%2Fa/versions/" + "9" * 300,
        "/com.example%2Fa/versions/1%002",
        "/%FF%FE/a/versions",
    ],
)
async def test_a_path_naming_what_cannot_be_registered_is_404(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(SERVERS + path)

    assert_registry_error(response, 404)


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
query_values = st.one_of(
    text,
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.datetimes().map(lambda value: value.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "latest", "", "%", "_", "\\"]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), text),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
cursor_states = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"after": text},
        optional={"search": text, "updated_since": query_values, "version": text, "extra": json_values},
    ),
)


@pytest.fixture(scope="module")
def sync_client(api_host: LocalHostProcess) -> Any:
    with httpx.Client(base_url=api_host.base_url, timeout=30) as client:
        yield client


def assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url, response.text)
    assert response.headers["access-control-allow-origin"] == "*"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["limit", "cursor", "search", "updated_since", "version", "x"]), query_values))
def test_no_query_string_makes_the_list_fail_with_a_5xx(sync_client: httpx.Client, params: dict[str, str]) -> None:
    assert_no_server_error(sync_client.get(SERVERS, params=params))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=cursor_states, limit=st.integers(min_value=1, max_value=100))
def test_no_forged_cursor_makes_the_list_fail_with_a_5xx(sync_client: httpx.Client, state: Any, limit: int) -> None:
    assert_no_server_error(sync_client.get(f"{SERVERS}?limit={limit}&cursor={forged_cursor(state)}"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text, version=text)
def test_no_server_path_makes_a_lookup_fail_with_a_5xx(sync_client: httpx.Client, name: str, version: str) -> None:
    for path in (f"{quote(name, safe='')}/versions", f"a.b%2F{quote(name, safe='')}/versions/{quote(version, safe='')}"):
        assert_no_server_error(sync_client.get(f"{SERVERS}/{path}"))
