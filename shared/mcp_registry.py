"""The MCP Registry API (v0.1) over the approved registrations, for GitHub Copilot and VS Code.

An organisation sets `https://<app>/api` as its Copilot "MCP Registry URL"; clients then read
`/v0.1/servers…` anonymously (they send no credentials, and anything but 200/404 blocks servers), from
their own origins (so every answer carries `Access-Control-Allow-Origin: *`), without following redirects.
Only Approved registrations exist here; everything else is a 404, the one status clients read as
"not in the registry".

Clients send the name's `/` as `%2F`, which the deployed Functions host refuses inside a route value, so
one catch-all route takes everything under `v0.1/servers` and the rest of the path is parsed here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import asyncpg
import azure.functions as func
from pydantic import BaseModel

from shared import db
from shared.errors import ApiError
from shared.http import json_response
from shared.models import (
    AllowedMcpServer,
    McpAllowlist,
    McpListMetadata,
    McpOfficialStatus,
    McpRegistrationExtras,
    McpRegistryError,
    McpRemote,
    McpServer,
    McpServerList,
    McpServerResponse,
)
from shared.registrations import escape_like
from shared.settings import RegistrySettings, get_registry_settings

SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"
DEFAULT_LIMIT = 30
MAX_LIMIT = 100
DESCRIPTION_MAX = 100
TITLE_MAX = 100

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
# Approval should show up quickly, and a 404 must not stick.
CACHE_FOUND = "public, max-age=60"
CACHE_MISSING = "no-cache"

SERVER_COLUMNS = """
    r.server_name, r.endpoint_name, r.description, r.endpoint_url, r.transport, r.version,
    r.owner_contact, r.available_tools, r.approved_at, r.updated_at
"""
SELECT_APPROVED_SERVER_SQL = f"""
SELECT {SERVER_COLUMNS} FROM registrations r WHERE r.status = 'Approved' AND r.server_name = $1
"""
SELECT_ALLOWED_URLS_SQL = """
SELECT endpoint_url FROM registrations WHERE status = 'Approved' ORDER BY server_name
"""
SEARCH_CONDITION = "(r.server_name ILIKE $? OR r.endpoint_name ILIKE $? OR r.description ILIKE $?)"


class RegistryError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def registry_response(payload: BaseModel, *, status: int = 200) -> func.HttpResponse:
    cache = CACHE_FOUND if status == 200 else CACHE_MISSING
    return json_response(payload, status=status, headers={**CORS_HEADERS, "Cache-Control": cache}, exclude_none=True)


def registry_error_response(status: int, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    # The registry spec's error body is {"error": …}; the API's own keys ride along.
    code = {400: "INVALID_QUERY", 404: "NOT_FOUND"}.get(status, "DATABASE_UNAVAILABLE" if status == 503 else "ERROR")
    response = registry_response(McpRegistryError(error=message, detail=message, error_code=code), status=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# ---------------------------------------------------------------- the server.json shape


def short_description(description: str | None, fallback: str) -> str:
    """server.json wants 1–100 characters: collapse whitespace, cut at a word, never empty."""
    text = " ".join((description or "").split()) or " ".join(fallback.split())
    if len(text) <= DESCRIPTION_MAX:
        return text
    cut = text[: DESCRIPTION_MAX - 1]
    if " " in cut[DESCRIPTION_MAX // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:-") + "…"


def server_entry(row: asyncpg.Record, settings: RegistrySettings) -> McpServerResponse:
    server = McpServer(
        schema_=SERVER_SCHEMA_URL,
        name=row["server_name"],
        title=" ".join(row["endpoint_name"].split())[:TITLE_MAX],
        description=short_description(row["description"], row["endpoint_name"]),
        version=row["version"],
        # The canonical form it is stored in (shared/urls.py); clients compare the configured URL with ===.
        remotes=[McpRemote(type=row["transport"], url=row["endpoint_url"])],
        meta={
            f"{settings.server_namespace}/registration": McpRegistrationExtras(
                tools=row["available_tools"],
                ownerContact=row["owner_contact"] if settings.publish_owner_contact else None,
            )
        },
    )
    official = McpOfficialStatus(
        status="active", publishedAt=row["approved_at"], updatedAt=row["updated_at"], isLatest=True
    )
    return McpServerResponse(server=server, meta={OFFICIAL_META_KEY: official})


# ---------------------------------------------------------------- cursors and query strings


def encode_cursor(state: dict[str, Any]) -> str:
    # URL-safe without padding: VS Code appends the cursor to the URL without encoding it.
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RegistryError(400, "Invalid cursor parameter") from None
    if not isinstance(state, dict) or not isinstance(state.get("after"), str):
        raise RegistryError(400, "Invalid cursor parameter")
    for key in ("search", "updated_since", "version"):
        if state.get(key) is not None and not isinstance(state[key], str):
            raise RegistryError(400, "Invalid cursor parameter")
    return state


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise RegistryError(400, "Invalid limit parameter: expected an integer") from None
    if limit < 1:
        raise RegistryError(400, "Invalid limit parameter: must be at least 1")
    return min(limit, MAX_LIMIT)


def _updated_since(raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise RegistryError(400, "Invalid updated_since format: expected RFC3339 timestamp") from None
    if value.tzinfo is None:
        raise RegistryError(400, "Invalid updated_since format: expected RFC3339 timestamp")
    return value


def _text_param(params: dict[str, str], name: str, max_length: int) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_length or "\x00" in value:
        raise RegistryError(400, f"Invalid {name} parameter")
    return value


# ---------------------------------------------------------------- reads


async def list_servers(params: dict[str, str], settings: RegistrySettings) -> McpServerList:
    limit = _limit(params)
    cursor = params.get("cursor")
    # The cursor carries its own filter: VS Code drops `search` on every page after the first.
    if cursor:
        state = decode_cursor(cursor)
    else:
        state = {
            "after": "",
            "search": _text_param(params, "search", 200),
            "updated_since": _text_param(params, "updated_since", 64),
            "version": _text_param(params, "version", 255),
        }
    updated_since = _updated_since(state.get("updated_since"))
    conditions = db.Conditions()
    conditions.fragments.append("r.status = 'Approved'")
    if state["after"]:
        conditions.add("r.server_name > $?", state["after"])
    if state.get("search"):
        conditions.add(SEARCH_CONDITION, f"%{escape_like(state['search'])}%")
    if updated_since is not None:
        conditions.add("r.updated_at > $?", updated_since)
    if state.get("version") and state["version"] != "latest":
        conditions.add("r.version = $?", state["version"])
    args = [*conditions.args, limit + 1]
    sql = f"SELECT {SERVER_COLUMNS} FROM registrations r {conditions.where()} ORDER BY r.server_name LIMIT ${len(args)}"
    async with db.connection() as conn:
        rows = await conn.fetch(sql, *args)
    page = rows[:limit]
    next_cursor = encode_cursor({**state, "after": page[-1]["server_name"]}) if len(rows) > limit else None
    return McpServerList(
        servers=[server_entry(row, settings) for row in page],
        metadata=McpListMetadata(count=len(page), nextCursor=next_cursor),
    )


async def get_approved_server(name: str) -> asyncpg.Record:
    async with db.connection() as conn:
        row = await conn.fetchrow(SELECT_APPROVED_SERVER_SQL, name)
    if row is None:
        raise RegistryError(404, "Server not found")
    return row


def parse_server_path(rest: str) -> tuple[str, str | None]:
    """`<namespace>/<name>/versions[/<version>]` → (name, version or None for the versions list).

    The name may arrive encoded (`%2F`) or not; it always has exactly one slash, so its two segments
    are taken first and the rest is read after them (a server named `x/versions` routes correctly).
    """
    segments = [unquote(segment) for segment in re.sub("%2[fF]", "/", rest).strip("/").split("/")]
    if len(segments) < 3 or segments[2] != "versions" or not segments[0] or not segments[1]:
        raise RegistryError(404, "Not found")
    name = f"{segments[0]}/{segments[1]}"
    if len(segments) == 3:
        return name, None
    version = "/".join(segments[3:])
    if not version:
        raise RegistryError(404, "Not found")
    return name, version


async def server_versions(rest: str, settings: RegistrySettings) -> McpServerList | McpServerResponse:
    name, version = parse_server_path(rest)
    row = await get_approved_server(name)
    if version is None:
        return McpServerList(servers=[server_entry(row, settings)], metadata=McpListMetadata(count=1))
    if version != "latest" and version != row["version"]:
        raise RegistryError(404, "Server version not found")
    return server_entry(row, settings)


async def registry_servers_response(req: func.HttpRequest) -> func.HttpResponse:
    """Everything under /v0.1/servers: the list, a server's versions, and one version."""
    settings = get_registry_settings()
    if not settings.enabled:
        return registry_error_response(404, "Not found")
    if req.method == "OPTIONS":
        return func.HttpResponse(status_code=204, headers={**CORS_HEADERS, "Access-Control-Max-Age": "600"})
    rest = (req.route_params.get("rest") or "").strip("/")
    try:
        if not rest:
            payload: BaseModel = await list_servers(dict(req.params), settings)
        else:
            payload = await server_versions(rest, settings)
    except RegistryError as exc:
        return registry_error_response(exc.status, exc.message)
    except Exception as exc:
        error = db.as_api_error(exc)
        if error is None:
            raise
        return registry_error_response(error.status, error.detail, error.headers)
    return registry_response(payload)


async def allowlist_response() -> func.HttpResponse:
    """The approved remote URLs in the shape of Copilot's managed-settings.json `allowedMcpServers`."""
    if not get_registry_settings().enabled:
        raise RegistryDisabled()
    async with db.connection() as conn:
        rows = await conn.fetch(SELECT_ALLOWED_URLS_SQL)
    return json_response(McpAllowlist(allowedMcpServers=[AllowedMcpServer(serverUrl=row["endpoint_url"]) for row in rows]))


class RegistryDisabled(ApiError):
    status = 404
    error_code = "NOT_FOUND"
    default_detail = "The MCP Registry API is turned off"
