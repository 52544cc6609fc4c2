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
import re
from urllib.parse import unquote

import asyncpg
import azure.functions as func
from pydantic import BaseModel

from shared import db
from shared.errors import ApiError, InvalidQuery, NotFound
from shared.http import json_response, parse_query
from shared.models import (
    AllowedMcpServer,
    McpAllowlist,
    McpCursor,
    McpListMetadata,
    McpOfficialStatus,
    McpRegistrationExtras,
    McpRegistryError,
    McpRemote,
    McpServer,
    McpServerList,
    McpServerResponse,
    McpServersQuery,
)
from shared.registrations import escape_like
from shared.settings import RegistrySettings, get_registry_settings

SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"
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
# What a path may name: anything else cannot be registered, so it is a 404 without asking the database.
SERVER_NAME = re.compile(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+")
MAX_VERSION_LENGTH = 255


def registry_response(payload: BaseModel, *, status: int = 200) -> func.HttpResponse:
    cache = CACHE_FOUND if status == 200 else CACHE_MISSING
    return json_response(payload, status=status, headers={**CORS_HEADERS, "Cache-Control": cache}, exclude_none=True)


def registry_error_response(error: ApiError) -> func.HttpResponse:
    """An API error in the registry spec's body ({"error": …}; the API's own keys ride along), with CORS."""
    body = McpRegistryError(error=error.detail, detail=error.detail, error_code=error.error_code)
    response = registry_response(body, status=error.status)
    for name, value in error.headers.items():
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


# ---------------------------------------------------------------- cursors


def encode_cursor(cursor: McpCursor) -> str:
    # URL-safe without padding: VS Code appends the cursor to the URL without encoding it.
    raw = cursor.model_dump_json(exclude_none=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> McpCursor:
    """The cursor's state, validated like the query it stands for; anything else is 400."""
    try:
        return McpCursor.model_validate_json(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        # ValueError covers pydantic's ValidationError (malformed JSON, wrong shapes, out-of-bounds values).
        raise InvalidQuery("Invalid cursor parameter", field_errors={"cursor": "invalid"}) from None


# ---------------------------------------------------------------- reads


async def list_servers(query: McpServersQuery, settings: RegistrySettings) -> McpServerList:
    state = (
        decode_cursor(query.cursor)
        if query.cursor
        else McpCursor(after="", search=query.search, updated_since=query.updated_since, version=query.version)
    )
    conditions = db.Conditions()
    conditions.fragments.append("r.status = 'Approved'")
    if state.after:
        conditions.add("r.server_name > $?", state.after)
    if state.search:
        conditions.add(SEARCH_CONDITION, f"%{escape_like(state.search)}%")
    if state.updated_since is not None:
        conditions.add("r.updated_at > $?", state.updated_since)
    if state.version and state.version != "latest":
        conditions.add("r.version = $?", state.version)
    args = [*conditions.args, query.limit + 1]
    sql = f"SELECT {SERVER_COLUMNS} FROM registrations r {conditions.where()} ORDER BY r.server_name LIMIT ${len(args)}"
    async with db.connection() as conn:
        rows = await conn.fetch(sql, *args)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    next_cursor = encode_cursor(state.model_copy(update={"after": page[-1]["server_name"]})) if more else None
    return McpServerList(
        servers=[server_entry(row, settings) for row in page],
        metadata=McpListMetadata(count=len(page), nextCursor=next_cursor),
    )


async def get_approved_server(name: str) -> asyncpg.Record:
    async with db.connection() as conn:
        row = await conn.fetchrow(SELECT_APPROVED_SERVER_SQL, name)
    if row is None:
        raise NotFound("Server not found")
    return row


def parse_server_path(rest: str) -> tuple[str, str | None]:
    """`<namespace>/<name>/versions[/<version>]` → (name, version or None for the versions list).

    The name may arrive encoded (`%2F`) or not; it always has exactly one slash, so its two segments
    are taken first and the rest is read after them (a server named `x/versions` routes correctly).
    """
    segments = [unquote(segment) for segment in re.sub("%2[fF]", "/", rest).strip("/").split("/")]
    if len(segments) < 3 or segments[2] != "versions" or not segments[0] or not segments[1]:
        raise NotFound("Not found")
    name = f"{segments[0]}/{segments[1]}"
    if len(name) > 200 or not SERVER_NAME.fullmatch(name):
        raise NotFound("Server not found")  # no such name can be registered
    if len(segments) == 3:
        return name, None
    version = "/".join(segments[3:])
    if not version or len(version) > MAX_VERSION_LENGTH or "\x00" in version:
        raise NotFound("Server version not found")
    return name, version


async def server_versions(rest: str, settings: RegistrySettings) -> McpServerList | McpServerResponse:
    name, version = parse_server_path(rest)
    row = await get_approved_server(name)
    if version is None:
        return McpServerList(servers=[server_entry(row, settings)], metadata=McpListMetadata(count=1))
    if version != "latest" and version != row["version"]:
        raise NotFound("Server version not found")
    return server_entry(row, settings)


async def registry_servers_response(req: func.HttpRequest) -> func.HttpResponse:
    """Everything under /v0.1/servers: the list, a server's versions, and one version."""
    settings = get_registry_settings()
    if not settings.enabled:
        return registry_error_response(NotFound("Not found"))
    if req.method == "OPTIONS":
        return func.HttpResponse(status_code=204, headers={**CORS_HEADERS, "Access-Control-Max-Age": "600"})
    rest = (req.route_params.get("rest") or "").strip("/")
    try:
        if not rest:
            payload: BaseModel = await list_servers(parse_query(req, McpServersQuery), settings)
        else:
            payload = await server_versions(rest, settings)
    except Exception as exc:
        # Every failure the caller can act on keeps the registry's body and its CORS headers.
        error = db.as_api_error(exc)
        if error is None:
            raise
        return registry_error_response(error)
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
