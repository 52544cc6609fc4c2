"""Publishing a server.json: POST /api/v0.1/validate (writes nothing) and POST /api/v0.1/publish."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from tests.support.issuer import bearer
from tests.support.registrations import REGISTRATIONS, assert_error, decide

TokenFactory = Callable[..., str]
PUBLISH = "/api/v0.1/publish"
VALIDATE = "/api/v0.1/validate"
SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def server_json(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    document: dict[str, Any] = {
        "$schema": SCHEMA,
        "name": f"com.example.mcp/tickets-{tag}",
        "title": "Tickets",
        "description": "Open and search support tickets",
        "version": "1.2.0",
        "remotes": [{"type": "streamable-http", "url": f"https://tickets-{tag}.example.com/mcp"}],
        "_meta": {"com.example.mcp/registration": {"tools": [{"name": "open_ticket"}, {"name": "search_tickets"}]}},
    }
    document.update(overrides)
    return document


async def count_rows(db: asyncpg.Connection, name: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM registrations WHERE lower(server_name) = lower($1)", name)
    return count


async def test_a_valid_server_json_is_published_as_a_pending_registration_of_the_caller(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token, document = user_token(), server_json()

    response = await api.post(PUBLISH, json=document, headers=bearer(token))

    assert response.status_code == 201, response.text
    registration = response.json()
    assert registration["status"] == "Pending"
    assert registration["server_name"] == document["name"]
    assert registration["endpoint_url"] == document["remotes"][0]["url"]
    assert registration["endpoint_name"] == "Tickets" and registration["version"] == "1.2.0"
    assert [tool["name"] for tool in registration["available_tools"]] == ["open_ticket", "search_tickets"]
    assert response.headers["Location"].endswith(f"{REGISTRATIONS}/{registration['registration_id']}")
    mine = await api.get(f"{REGISTRATIONS}/my", headers=bearer(token))
    assert registration["registration_id"] in [item["registration_id"] for item in mine.json()["results"]]


async def test_a_published_server_is_served_by_the_registry_only_once_approved(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    document = server_json()
    published = (await api.post(PUBLISH, json=document, headers=bearer(user_token()))).json()
    lookup = f"/api/v0.1/servers/{document['name'].replace('/', '%2F')}/versions/latest"

    before = await api.get(lookup)
    assert (await decide(api, user_token(admin=True), published["registration_id"], "Approved")).status_code == 200
    after = await api.get(lookup)

    assert before.status_code == 404
    assert after.status_code == 200 and after.json()["server"]["version"] == "1.2.0"


async def test_publishing_again_while_pending_updates_the_registration(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token, document = user_token(), server_json()
    first = await api.post(PUBLISH, json=document, headers=bearer(token))

    again = await api.post(PUBLISH, json={**document, "version": "1.3.0", "description": "Now with SLAs"}, headers=bearer(token))

    assert again.status_code == 200, again.text
    assert again.json()["registration_id"] == first.json()["registration_id"]
    assert again.json()["version"] == "1.3.0" and again.json()["description"] == "Now with SLAs"
    assert await count_rows(db, document["name"]) == 1
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE registration_id = $1 ORDER BY timestamp", uuid.UUID(first.json()["registration_id"])
    )
    assert [row["action"] for row in actions] == ["Created", "Updated"]


async def test_publishing_a_new_version_of_an_approved_name_is_409_saying_how_to_proceed(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token, document = user_token(), server_json()
    published = (await api.post(PUBLISH, json=document, headers=bearer(token))).json()
    assert (await decide(api, user_token(admin=True), published["registration_id"], "Approved")).status_code == 200

    response = await api.post(PUBLISH, json={**document, "version": "2.0.0"}, headers=bearer(token))

    error = assert_error(response, 409, "INVALID_STATE_TRANSITION")
    assert "admin" in error["detail"] and "new name" in error["detail"]


async def test_publishing_a_name_someone_else_holds_is_409_naming_it(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    document = server_json()
    holder = (await api.post(PUBLISH, json=document, headers=bearer(user_token()))).json()

    response = await api.post(
        PUBLISH, json={**document, "remotes": server_json()["remotes"]}, headers=bearer(user_token())
    )

    assert assert_error(response, 409, "DUPLICATE_SERVER_NAME")["registration_id"] == holder["registration_id"]


async def test_publishing_a_taken_url_in_any_spelling_is_409(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    first = server_json()
    holder = (await api.post(PUBLISH, json=first, headers=bearer(user_token()))).json()
    # The official schema wants a lower-case scheme; everything else may be spelled differently.
    url = first["remotes"][0]["url"].replace("tickets-", "TICKETS-").replace(".com/mcp", ".com:443/%6Dcp")

    response = await api.post(
        PUBLISH, json=server_json(remotes=[{"type": "streamable-http", "url": url}]), headers=bearer(user_token())
    )

    error = assert_error(response, 409, "DUPLICATE_ENDPOINT")
    assert error["registration_id"] == holder["registration_id"] and "remotes.0.url" in error["field_errors"]


async def assert_refused(api: httpx.AsyncClient, token: str, document: dict[str, Any], field: str) -> dict[str, Any]:
    for path in (VALIDATE, PUBLISH):
        response = await api.post(path, json=document, headers=bearer(token))
        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert field in error["field_errors"], (path, error)
    return error


async def test_a_name_outside_the_namespace_is_422_naming_it(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    document = server_json(name="io.github.someone/tickets")

    await assert_refused(api, user_token(), document, "name")
    assert await count_rows(db, document["name"]) == 0


async def test_a_packages_only_server_is_422_saying_packages_are_not_supported(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    package = {"registryType": "npm", "identifier": "@example/tickets", "version": "1.2.0", "transport": {"type": "stdio"}}
    document = server_json(packages=[package])
    del document["remotes"]

    error = await assert_refused(api, user_token(), document, "packages")
    assert "not supported" in error["field_errors"]["packages"]


async def test_two_remotes_are_422(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    document = server_json()
    document["remotes"] = document["remotes"] + [{"type": "sse", "url": "https://other.example.com/sse"}]

    await assert_refused(api, user_token(), document, "remotes")


async def test_a_file_that_breaks_the_official_schema_is_422_naming_the_field(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    await assert_refused(api, user_token(), server_json(description="d" * 101), "description")
    await assert_refused(api, user_token(), server_json(name="no-slash"), "name")
    await assert_refused(api, user_token(), server_json(remotes=[{"type": "websocket", "url": "wss://x.example.com"}]), "remotes.0")


async def test_registry_rules_are_named_in_the_files_terms(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    await assert_refused(api, user_token(), server_json(remotes=[{"type": "sse", "url": "https://u:p@x.example.com/sse"}]), "remotes.0.url")
    await assert_refused(api, user_token(), server_json(version="^1.2"), "version")
    tools = {"com.example.mcp/registration": {"tools": [{"name": "Tool"}, {"name": "tool"}]}}
    await assert_refused(api, user_token(), server_json(_meta=tools), "_meta.com.example.mcp/registration.tools")


async def test_validate_answers_what_would_be_registered_and_writes_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    document = server_json(remotes=[{"type": "sse", "url": "https://Tickets.Example.com:443/sse"}])
    audit_before = await db.fetchval("SELECT count(*) FROM audit_log WHERE metadata::text LIKE $1", f"%{document['name']}%")

    response = await api.post(VALIDATE, json=document, headers=bearer(user_token()))

    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert response.json()["registration"]["endpoint_url"] == "https://tickets.example.com/sse"
    assert response.json()["registration"]["transport"] == "sse"
    assert await count_rows(db, document["name"]) == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE metadata::text LIKE $1", f"%{document['name']}%") == audit_before


async def test_validate_and_publish_need_a_signed_in_caller(api: httpx.AsyncClient) -> None:
    for path in (VALIDATE, PUBLISH):
        assert_error(await api.post(path, json=server_json()), 401, "UNAUTHENTICATED")
