"""Calls the verification tests make: probe a registration, approve it or its tools, read the registry."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.support.issuer import bearer
from tests.support.mcp_registry import SERVERS, assert_valid_server
from tests.support.registrations import REGISTRATIONS, audit_entries, create_registration, decide

REGISTRY_KEY = "com.example.mcp/registration"


async def probe(api: httpx.AsyncClient, admin_token: str, registration_id: str) -> httpx.Response:
    return await api.post(f"{REGISTRATIONS}/{registration_id}/verification", headers=bearer(admin_token))


async def probed(api: httpx.AsyncClient, admin_token: str, registration_id: str) -> dict[str, Any]:
    response = await probe(api, admin_token, registration_id)
    assert response.status_code == 200, response.text
    verification: dict[str, Any] = response.json()
    return verification


async def approve_tools(
    api: httpx.AsyncClient, admin_token: str, registration_id: str, fingerprint: str
) -> httpx.Response:
    return await api.post(
        f"{REGISTRATIONS}/{registration_id}/verification/approve-tools",
        json={"tools_fingerprint": fingerprint},
        headers=bearer(admin_token),
    )


async def registered(api: httpx.AsyncClient, token: str, url: str, **overrides: Any) -> dict[str, Any]:
    """A Pending registration of `url` (tools declared as the test servers' three by default)."""
    overrides.setdefault(
        "available_tools", [{"name": name} for name in ("get_forecast", "get_alerts", "get_history")]
    )
    return await create_registration(api, token, endpoint_url=url, **overrides)


async def approved(api: httpx.AsyncClient, admin_token: str, registration_id: str) -> dict[str, Any]:
    response = await decide(api, admin_token, registration_id, "Approved")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def tool_events(api: httpx.AsyncClient, admin_token: str, registration_id: str, event: str) -> list[dict[str, Any]]:
    """The registration's audit entries of one tool event (`Updated` entries, told apart by metadata.event)."""
    page = await audit_entries(api, admin_token, registration_id=registration_id, action="Updated")
    return [entry for entry in page["results"] if entry["metadata"].get("event") == event]


async def registration(api: httpx.AsyncClient, token: str, registration_id: str) -> dict[str, Any]:
    response = await api.get(f"{REGISTRATIONS}/{registration_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def registry_entry(api: httpx.AsyncClient, server_name: str) -> httpx.Response:
    return await api.get(f"{SERVERS}/{quote(server_name, safe='')}/versions/latest")


async def listed_names(api: httpx.AsyncClient, **params: str) -> list[str]:
    response = await api.get(SERVERS, params={"limit": "100", **params})
    assert response.status_code == 200, response.text
    for entry in response.json()["servers"]:
        assert_valid_server(entry["server"])
    return [entry["server"]["name"] for entry in response.json()["servers"]]
