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
import hashlib
import json
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import asyncpg
import azure.functions as func
from pydantic import BaseModel

from shared import db
from shared.db_errors import as_api_error
from shared.errors import ApiError, InvalidQuery, NotFound
from shared.http import entity_tags, json_response, parse_query
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
    McpServerLookupQuery,
    McpServerResponse,
    McpServersQuery,
    McpVerification,
)
from shared.registrations import SEARCH_DOCUMENT, escape_like
from shared.settings import RegistrySettings, get_registry_settings
from shared.sql import Conditions
from shared.verification import (
    REGISTRY_VERIFICATION_COLUMN,
    REGISTRY_VERIFICATION_FILTER,
    SERVED_CONDITION,
    VERIFICATION_GENERATION,
)

SERVER_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"
DESCRIPTION_MAX = 100
TITLE_MAX = 100

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
# A shared cache (a CDN in front) may serve a copy for a minute and revalidate in the background for five more;
# approvals should still show up quickly, and a 404 must not stick.
CACHE_FOUND = "public, max-age=60, stale-while-revalidate=300"
CACHE_MISSING = "no-cache"

# What is served, from an approved registration (unless suspended for drift, shared/verification.py) or from the
# tombstone of a removed one (same columns).
LIVE_SERVERS = f"""
SELECT r.server_name, r.endpoint_name, r.description, r.endpoint_url, r.transport, r.version, r.owner_contact,
       r.available_tools, r.approved_at AS published_at, r.updated_at, r.lifecycle AS status, r.status_message,
       r.status_changed_at, {REGISTRY_VERIFICATION_COLUMN}
  FROM registrations r WHERE r.status = 'Approved' AND {SERVED_CONDITION}
"""
REMOVED_SERVERS = """
SELECT r.server_name, r.endpoint_name, r.description, r.endpoint_url, r.transport, r.version, NULL::text,
       r.available_tools, r.published_at, r.updated_at, 'deleted', NULL::text, r.deleted_at, NULL::jsonb
  FROM registry_tombstones r WHERE true
"""
# The change generation of everything served below the horizon ($1): a change to a served server bumps its
# updated_at, a removal writes a tombstone, a probe its verification row, so the newest of them moves with every
# change (three index probes). Read with the page, in the same statement (see _list_sql).
GENERATION_SQL = f"""
SELECT greatest(
    (SELECT max(updated_at) FROM registrations WHERE status = 'Approved' AND updated_at < $1),
    (SELECT max(updated_at) FROM registry_tombstones WHERE updated_at < $1),
    {VERIFICATION_GENERATION}
) AS generation
"""
HORIZON_SQL = "SELECT registry_sync_horizon()"
SELECT_ALLOWED_URLS_SQL = f"""
SELECT endpoint_url FROM registrations r
 WHERE status = 'Approved' AND ($1 OR lifecycle <> 'deprecated') AND {SERVED_CONDITION}
 ORDER BY server_name
"""
SEARCH_CONDITION = "(r.server_name ILIKE $? OR r.endpoint_name ILIKE $? OR r.description ILIKE $?)"
# Approved registrations are searched through the one trigram index over their search document (sql/0011):
# this condition finds the candidates, SEARCH_CONDITION decides. Tombstones are few and have no such index.
SEARCH_DOCUMENT_CONDITION = f"{SEARCH_DOCUMENT} ILIKE $?"
NO_HORIZON = datetime.max.replace(tzinfo=UTC)
# What a path may name: anything else cannot be registered, so it is a 404 without asking the database.
SERVER_NAME = re.compile(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+")
MAX_VERSION_LENGTH = 255


def registry_response(payload: BaseModel, *, status: int = 200, etag: str | None = None) -> func.HttpResponse:
    cache = CACHE_FOUND if status == 200 else CACHE_MISSING
    headers = {**CORS_HEADERS, "Cache-Control": cache} | ({"ETag": etag} if etag else {})
    return json_response(payload, status=status, headers=headers, exclude_none=True)


def not_modified(etag: str) -> func.HttpResponse:
    # No body; the same CORS and cache headers as the 200 it stands for.
    return func.HttpResponse(status_code=304, headers={**CORS_HEADERS, "Cache-Control": CACHE_FOUND, "ETag": etag})


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 §13.1.2); `*` matches any current representation."""
    if not if_none_match:
        return False
    tags = entity_tags(if_none_match)
    return tags is None or etag.removeprefix("W/") in tags


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str, separators=(",", ":")).encode()).hexdigest()[:32]


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
                ownerContact=row["owner_contact"] if settings.publish_owner_contact and row["owner_contact"] else None,
                verification=McpVerification.model_validate(row["verification"]) if row["verification"] else None,
            )
        },
    )
    official = McpOfficialStatus(
        status=row["status"],
        statusMessage=row["status_message"],
        statusChangedAt=row["status_changed_at"],
        publishedAt=row["published_at"],
        updatedAt=row["updated_at"],
        isLatest=True,
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


def _list_sql(state: McpCursor, limit: int, horizon: datetime) -> tuple[str, list[object]]:
    """One page (limit + 1 rows, to know whether there is more) and the generation its ETag derives from, in one
    round trip: the generation rides on every row, and on a row of NULLs when the page is empty."""
    conditions = Conditions()
    conditions.add("r.updated_at < $?", horizon)  # $1, which GENERATION_SQL reads too
    if state.after:
        conditions.add("r.server_name > $?", state.after)
    search = conditions.add(SEARCH_CONDITION, f"%{escape_like(state.search)}%") if state.search else None
    if state.updated_since is not None:
        conditions.add("r.updated_at > $?", state.updated_since)
    if state.version and state.version != "latest":
        conditions.add("r.version = $?", state.version)
    if state.verification:
        conditions.add(REGISTRY_VERIFICATION_FILTER, state.verification)
    where = conditions.where().replace("WHERE", "AND", 1)
    servers = f"{LIVE_SERVERS} {where}"
    if search is not None:
        servers += " AND " + SEARCH_DOCUMENT_CONDITION.replace("$?", search)
    # A removed server has no verification: a verification filter lists live servers only.
    if state.include_deleted and not state.verification:
        servers += f" UNION ALL {REMOVED_SERVERS} {where}"
    args = [*conditions.args, limit + 1]
    page = f"SELECT * FROM ({servers}) r ORDER BY r.server_name LIMIT ${len(args)}"
    return f"SELECT g.generation, p.* FROM ({GENERATION_SQL}) g LEFT JOIN ({page}) p ON true ORDER BY p.server_name", args


async def list_servers_response(
    query: McpServersQuery, settings: RegistrySettings, if_none_match: str | None
) -> func.HttpResponse:
    """A page of servers in name order. A sync (`updated_since`) also lists removed servers, and reads every page
    below the first page's horizon, so a client that asks again with the newest `updatedAt` it saw misses
    nothing that changed meanwhile (sql/0015)."""
    if query.cursor:
        state = decode_cursor(query.cursor)
    else:
        syncing = query.updated_since is not None
        state = McpCursor(
            after="",
            search=query.search or None,
            updated_since=query.updated_since or None,
            version=query.version or None,
            include_deleted=query.include_deleted or syncing,
            verification=query.verification or None,
        )
    async with db.connection() as conn:
        if state.updated_since is not None and state.horizon is None:
            # Its own statement: the page's snapshot must be taken after it (sql/0015).
            state = state.model_copy(update={"horizon": await conn.fetchval(HORIZON_SQL)})
        sql, args = _list_sql(state, query.limit, state.horizon or NO_HORIZON)
        rows = await conn.fetch(sql, *args)
    generation = rows[0]["generation"]
    etag = f'W/"{_fingerprint(generation, state.model_dump(mode="json"), query.limit, settings.model_dump())}"'
    if etag_matches(if_none_match, etag):
        return not_modified(etag)  # the page was read with its generation, but nothing is rendered
    servers = [row for row in rows if row["server_name"] is not None]
    page, more = servers[: query.limit], len(servers) > query.limit
    next_cursor = encode_cursor(state.model_copy(update={"after": page[-1]["server_name"]})) if more else None
    payload = McpServerList(
        servers=[server_entry(row, settings) for row in page],
        metadata=McpListMetadata(count=len(page), nextCursor=next_cursor),
    )
    return registry_response(payload, etag=etag)


async def find_server(name: str, include_deleted: bool) -> asyncpg.Record:
    sql = f"SELECT * FROM ({LIVE_SERVERS} AND r.server_name = $1"
    if include_deleted:
        sql += f" UNION ALL {REMOVED_SERVERS} AND r.server_name = $1"
    async with db.connection() as conn:
        row = await conn.fetchrow(sql + ") r", name)
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


async def server_versions_response(
    rest: str, query: McpServerLookupQuery, settings: RegistrySettings, if_none_match: str | None
) -> func.HttpResponse:
    """A server's versions (the one it has), or one version (`latest` or exact)."""
    name, version = parse_server_path(rest)
    row = await find_server(name, query.include_deleted)
    if version is not None and version != "latest" and version != row["version"]:
        raise NotFound("Server version not found")
    # Strong: the served bytes are a function of the row's last change, the view asked for and the settings.
    etag = f'"{_fingerprint(row["server_name"], row["status"], row["updated_at"], row["verification"], version is None, settings.model_dump())}"'
    if etag_matches(if_none_match, etag):
        return not_modified(etag)
    entry = server_entry(row, settings)
    payload: BaseModel = entry if version is not None else McpServerList(servers=[entry], metadata=McpListMetadata(count=1))
    return registry_response(payload, etag=etag)


async def registry_servers_response(req: func.HttpRequest) -> func.HttpResponse:
    """Everything under /v0.1/servers: the list, a server's versions, and one version."""
    settings = get_registry_settings()
    if not settings.enabled:
        return registry_error_response(NotFound("Not found"))
    if req.method == "OPTIONS":
        return func.HttpResponse(status_code=204, headers={**CORS_HEADERS, "Access-Control-Max-Age": "600"})
    rest = (req.route_params.get("rest") or "").strip("/")
    if_none_match = req.headers.get("if-none-match")
    try:
        if not rest:
            return await list_servers_response(parse_query(req, McpServersQuery), settings, if_none_match)
        return await server_versions_response(rest, parse_query(req, McpServerLookupQuery), settings, if_none_match)
    except Exception as exc:
        # Every failure the caller can act on keeps the registry's body and its CORS headers.
        error = as_api_error(exc)
        if error is None:
            raise
        return registry_error_response(error)


async def allowlist_response(include_deprecated: bool = True) -> func.HttpResponse:
    """The approved remote URLs in the shape of Copilot's managed-settings.json `allowedMcpServers`."""
    if not get_registry_settings().enabled:
        raise RegistryDisabled()
    async with db.connection() as conn:
        rows = await conn.fetch(SELECT_ALLOWED_URLS_SQL, include_deprecated)
    return json_response(McpAllowlist(allowedMcpServers=[AllowedMcpServer(serverUrl=row["endpoint_url"]) for row in rows]))


class RegistryDisabled(ApiError):
    status = 404
    error_code = "NOT_FOUND"
    default_detail = "The MCP Registry API is turned off"
