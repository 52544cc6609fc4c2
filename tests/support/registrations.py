"""Helpers for the registration and audit-log tests: unique data per test, and the calls every test makes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.issuer import bearer

REGISTRATIONS = "/api/registrations"
AUDIT_LOGS = "/api/audit-logs"



def marker() -> str:
    """A search marker no other test's data contains."""
    return f"mk{uuid.uuid4().hex[:16]}"


def unique_url(tag: str = "mcp") -> str:
    return f"https://{tag}-{uuid.uuid4().hex[:12]}.example.com/mcp"


def registration_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "endpoint_url": unique_url(),
        "endpoint_name": "Weather tools",
        "description": "Forecasts and alerts",
        "owner_contact": "team-weather@example.com",
        "available_tools": [{"name": "get_forecast", "description": "Forecast for a city", "version": "1.2"}],
    }
    body.update(overrides)
    return body


async def create_registration(api: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    response = await api.post(REGISTRATIONS, json=registration_body(**overrides), headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def decide(
    api: httpx.AsyncClient, admin_token: str, registration_id: str, status: str, reason: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"status": status}
    if reason is not None:
        body["reason"] = reason
    return await api.patch(f"{REGISTRATIONS}/{registration_id}/status", json=body, headers=bearer(admin_token))


async def user_id_of(api: httpx.AsyncClient, token: str) -> str:
    response = await api.get("/api/users/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    return str(response.json()["user_id"])


async def audit_entries(api: httpx.AsyncClient, admin_token: str, **params: Any) -> dict[str, Any]:
    response = await api.get(AUDIT_LOGS, params=params, headers=bearer(admin_token))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def assert_error(response: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    """The contract's error shape with this status and code; returns the body for further checks."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == error_code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body
