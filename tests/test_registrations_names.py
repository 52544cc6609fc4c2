"""Look-alike names: server names only inside the registry's namespace(s) and unique ignoring case."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.support.host import LocalHostProcess
from tests.support.issuer import bearer
from tests.support.registrations import REGISTRATIONS, assert_error, create_registration, registration_body

TokenFactory = Callable[..., str]


def tag() -> str:
    return uuid.uuid4().hex[:10]


async def test_a_well_known_public_name_outside_the_namespace_is_422(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    body = registration_body(server_name="io.github.github/github-mcp-server")

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(user_token()))

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "com.example.mcp" in error["field_errors"]["server_name"]


async def test_a_namespace_that_only_starts_like_ours_is_422(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    body = registration_body(server_name=f"com.example.mcpx/{tag()}")

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(user_token()))

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_a_name_in_the_namespace_or_below_it_is_accepted(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    for name in (f"com.example.mcp/{tag()}", f"com.example.mcp.team-{tag()}/tickets", f"COM.Example.MCP/{tag()}"):
        created = await create_registration(api, user_token(), server_name=name)
        assert created["server_name"] == name


async def test_renaming_into_a_foreign_namespace_is_422(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"server_name": "io.github.github/x"}, headers=bearer(token)
    )

    assert "server_name" in assert_error(response, 422, "VALIDATION_ERROR")["field_errors"]


async def test_more_namespaces_can_be_allowed_by_a_setting(
    start_host: Callable[..., LocalHostProcess], user_token: TokenFactory
) -> None:
    host = start_host(MCP_SERVER_NAMESPACES="io.contoso, com.contoso.mcp")
    async with host.client() as client:
        allowed = await client.post(
            REGISTRATIONS, json=registration_body(server_name=f"io.contoso/{tag()}"), headers=bearer(user_token())
        )
        default_still = await client.post(
            REGISTRATIONS, json=registration_body(server_name=f"com.example.mcp/{tag()}"), headers=bearer(user_token())
        )
        foreign = await client.post(
            REGISTRATIONS, json=registration_body(server_name=f"io.github/{tag()}"), headers=bearer(user_token())
        )

    assert (allowed.status_code, default_still.status_code) == (201, 201), (allowed.text, default_still.text)
    assert_error(foreign, 422, "VALIDATION_ERROR")


async def test_server_names_differing_only_in_case_are_one_name(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    name = f"com.example.mcp/weather-{tag()}"
    holder = await create_registration(api, user_token(), server_name=name)

    response = await api.post(REGISTRATIONS, json=registration_body(server_name=name.upper().replace("COM.EXAMPLE.MCP", "com.example.mcp")), headers=bearer(user_token()))

    error = assert_error(response, 409, "DUPLICATE_SERVER_NAME")
    assert error["registration_id"] == holder["registration_id"]


async def test_a_derived_name_that_differs_only_in_case_from_a_taken_one_gets_a_suffix(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    marker = tag()
    await create_registration(api, user_token(), server_name=f"com.example.mcp/WEATHER-{marker}")

    created = await create_registration(api, user_token(), endpoint_name=f"weather {marker}")

    assert created["server_name"].startswith(f"com.example.mcp/weather-{marker}-")
