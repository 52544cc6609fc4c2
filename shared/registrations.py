"""Registrations: their SQL, the queries that run it, and the responses of the registration endpoints.

Every change writes its audit entry in the same statement or transaction, so a failed audit write rolls
the change back. Races are settled by the database: the unique index on `endpoint_url`, a conditional
UPDATE for decisions (only from Pending), and row locks for edits.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from uuid import UUID

import asyncpg
import azure.functions as func
from cachetools import LRUCache

from shared import db, verification
from shared.errors import (
    DuplicateEndpoint,
    DuplicateServerName,
    Forbidden,
    InvalidStateTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from shared.http import entity_tags, json_response, no_content
from shared.models import (
    ByUrlQuery,
    LifecycleChange,
    MyRegistrationsQuery,
    Registration,
    RegistrationCreate,
    RegistrationList,
    RegistrationListQuery,
    RegistrationUpdate,
    StatusChange,
)
from shared.settings import get_registration_settings, get_registry_settings
from shared.sql import Conditions
from shared.tokens import Caller

ENDPOINT_URL_CONSTRAINT = "registrations_endpoint_url_key"
SERVER_NAME_CONSTRAINT = "registrations_server_name_key"
EDITABLE_FIELDS = (
    "endpoint_url", "endpoint_name", "description", "owner_contact", "available_tools", "server_name", "version",
    "transport",
)
# Attempts at a derived server name before giving up (each retry adds a random suffix).
DERIVED_NAME_ATTEMPTS = 4

# The columns of a Registration response, read from `r` (a registrations row) joined to its people.
REGISTRATION_COLUMNS = """
    r.registration_id, r.endpoint_url, r.endpoint_name, r.description, r.owner_contact, r.available_tools,
    r.server_name, r.version, r.transport, r.status, r.submitter_id, s.email AS submitter_email, s.display_name AS submitter_display_name,
    r.approver_id, a.email AS approver_email, a.display_name AS approver_display_name,
    r.submitted_at, r.approved_at, r.created_at, r.updated_at, r.row_version,
    r.lifecycle, r.status_message, r.status_changed_at, to_jsonb(v) AS verification
"""
REGISTRATION_JOINS = """
    JOIN users s ON s.user_id = r.submitter_id
    LEFT JOIN users a ON a.user_id = r.approver_id
    LEFT JOIN registration_verifications v ON v.registration_id = r.registration_id
"""

CREATE_REGISTRATION_SQL = f"""
WITH r AS (
    INSERT INTO registrations (
        endpoint_url, endpoint_name, description, owner_contact, available_tools, server_name, version, transport,
        submitter_id
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING *
), audit AS (
    INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
    SELECT r.registration_id, $9, 'Created', NULL, r.status, $10 FROM r
)
SELECT {REGISTRATION_COLUMNS} FROM r {REGISTRATION_JOINS}
"""

SELECT_REGISTRATION_BY_ID_SQL = f"""
SELECT {REGISTRATION_COLUMNS} FROM registrations r {REGISTRATION_JOINS} WHERE r.registration_id = $1
"""

SELECT_REGISTRATION_BY_URL_SQL = f"""
SELECT {REGISTRATION_COLUMNS} FROM registrations r {REGISTRATION_JOINS} WHERE r.endpoint_url = $1
"""

SELECT_ID_BY_URL_SQL = "SELECT registration_id FROM registrations WHERE endpoint_url = $1"
SELECT_ID_BY_SERVER_NAME_SQL = "SELECT registration_id FROM registrations WHERE lower(server_name) = lower($1)"

LOCK_REGISTRATION_SQL = """
SELECT registration_id, endpoint_url, endpoint_name, description, owner_contact, available_tools,
       server_name, version, transport, status, submitter_id, row_version
  FROM registrations
 WHERE registration_id = $1
   FOR UPDATE
"""

UPDATE_REGISTRATION_SQL = f"""
WITH r AS (
    UPDATE registrations
       SET endpoint_url = $2, endpoint_name = $3, description = $4, owner_contact = $5, available_tools = $6,
           server_name = $7, version = $8, transport = $9, edited_at = now(), edited_by = $10
     WHERE registration_id = $1
    RETURNING *
), audit AS (
    INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
    SELECT r.registration_id, $10, 'Updated', r.status, r.status, $11 FROM r
)
SELECT {REGISTRATION_COLUMNS} FROM r {REGISTRATION_JOINS}
"""

# Only a Pending registration can be decided, and only as it was reviewed: concurrent decisions and edits race
# on this one conditional UPDATE. $5: the row versions If-Match accepts (NULL: no If-Match, or `*`). $6: for an
# approval without If-Match, how recent an edit by someone else refuses it (NULL: no such rule).
DECIDE_REGISTRATION_SQL = f"""
WITH r AS (
    UPDATE registrations
       SET status = $2, approver_id = $3, approved_at = now()
     WHERE registration_id = $1 AND status = 'Pending'
       AND ($5::bigint[] IS NULL OR row_version = ANY($5::bigint[]))
       AND ($6::float8 IS NULL OR edited_at IS NULL OR edited_by = $3
            OR edited_at <= now() - make_interval(secs => $6::float8))
    RETURNING *
), audit AS (
    INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
    SELECT r.registration_id, $3, $2, 'Pending', r.status, $4 FROM r
)
SELECT {REGISTRATION_COLUMNS} FROM r {REGISTRATION_JOINS}
"""

# Deprecate or reactivate an approved registration, audited in the same statement; a request that changes nothing
# matches no row (the caller reads the current one).
CHANGE_LIFECYCLE_SQL = f"""
WITH before AS (
    SELECT registration_id, lifecycle, status_message FROM registrations
     WHERE registration_id = $1 AND status = 'Approved' AND (lifecycle, status_message) IS DISTINCT FROM ($2, $3)
       FOR UPDATE
), r AS (
    UPDATE registrations r
       SET lifecycle = $2, status_message = $3, status_changed_at = clock_timestamp()
      FROM before
     WHERE r.registration_id = before.registration_id
    RETURNING r.*
), audit AS (
    INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
    SELECT r.registration_id, $4, CASE WHEN $2 = 'deprecated' THEN 'Deprecated' ELSE 'Undeprecated' END,
           r.status, r.status,
           jsonb_build_object('lifecycle', jsonb_build_object('before', before.lifecycle, 'after', $2::text),
                              'message', jsonb_build_object('before', before.status_message, 'after', $3::text))
      FROM r JOIN before USING (registration_id)
)
SELECT {REGISTRATION_COLUMNS} FROM r {REGISTRATION_JOINS}
"""

# Why a decision did not apply (read after the UPDATE decided; only explains, never decides).
SELECT_DECISION_STATE_SQL = """
SELECT status, row_version, extract(epoch FROM now() - edited_at) AS edited_seconds_ago
  FROM registrations WHERE registration_id = $1
"""

DELETE_REGISTRATION_SQL = """
WITH deleted AS (
    DELETE FROM registrations WHERE registration_id = $1 RETURNING *
), audit AS (
    INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
    SELECT d.registration_id, $2, 'Deleted', d.status, NULL,
           jsonb_build_object('snapshot', to_jsonb(d) - 'row_version')
      FROM deleted d
)
SELECT registration_id FROM deleted
"""


# ---------------------------------------------------------------- rendering


def registration_from_row(row: asyncpg.Record) -> Registration:
    return Registration.model_validate(dict(row))


def etag_of(row: asyncpg.Record) -> str:
    return f'"{row["row_version"]}"'


def registration_response(row: asyncpg.Record, *, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return json_response(
        registration_from_row(row), status=status, headers={"ETag": etag_of(row), **(headers or {})}
    )


def _tools_json(tools: Any) -> list[dict[str, Any]]:
    return [tool.model_dump(exclude_none=True) for tool in tools]


# ---------------------------------------------------------------- create


def derived_server_name(endpoint_name: str, namespace: str, suffix: str = "") -> str:
    """<namespace>/<slug of the endpoint name><suffix>, within server.json's name rules."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", endpoint_name.lower()).strip("-")[:80] or "server"
    return f"{namespace}/{slug}{suffix}"


def check_namespace(server_name: str | None) -> None:
    """An explicit server name must be in one of this registry's namespaces (422 otherwise)."""
    settings = get_registry_settings()
    if server_name is not None and not settings.in_namespace(server_name):
        allowed = ", ".join(settings.namespaces)
        raise ValidationFailed(field_errors={"server_name": f"must be in this registry's namespace ({allowed})"})


async def create_registration(body: RegistrationCreate, caller: Caller, base_url: str) -> func.HttpResponse:
    check_namespace(body.server_name)
    tools = _tools_json(body.available_tools)
    namespace = get_registry_settings().server_namespace
    async with db.connection() as conn:
        for attempt in range(DERIVED_NAME_ATTEMPTS):
            # A derived name that is taken gets a random suffix; an explicit one is the caller's to change.
            suffix = "" if attempt == 0 else f"-{secrets.token_hex(3)}"
            server_name = body.server_name or derived_server_name(body.endpoint_name, namespace, suffix)
            initial = {
                "endpoint_url": body.endpoint_url,
                "endpoint_name": body.endpoint_name,
                "description": body.description,
                "owner_contact": body.owner_contact,
                "available_tools": tools,
                "server_name": server_name,
                "version": body.version,
                "transport": body.transport,
            }
            try:
                row = await conn.fetchrow(
                    CREATE_REGISTRATION_SQL,
                    body.endpoint_url,
                    body.endpoint_name,
                    body.description,
                    body.owner_contact,
                    tools,
                    server_name,
                    body.version,
                    body.transport,
                    caller.user_id,
                    initial,
                )
                break
            except asyncpg.UniqueViolationError as exc:
                retry = exc.constraint_name == SERVER_NAME_CONSTRAINT and body.server_name is None
                if not retry or attempt == DERIVED_NAME_ATTEMPTS - 1:
                    raise await _conflict(conn, exc, body.endpoint_url, server_name) from None
    assert row is not None
    location = f"{base_url.rstrip('/')}/{row['registration_id']}"
    return registration_response(row, status=201, headers={"Location": location})


async def _conflict(
    conn: asyncpg.Connection, exc: asyncpg.UniqueViolationError, endpoint_url: str, server_name: str | None
) -> Exception:
    """The contract's 409 for a unique violation, naming the registration that holds the value."""
    if exc.constraint_name == ENDPOINT_URL_CONSTRAINT:
        existing = await conn.fetchval(SELECT_ID_BY_URL_SQL, endpoint_url)
        return DuplicateEndpoint(
            "This endpoint URL is already registered",
            field_errors={"endpoint_url": "already registered"},
            extra={"registration_id": str(existing) if existing else None},
        )
    if exc.constraint_name == SERVER_NAME_CONSTRAINT:
        existing = await conn.fetchval(SELECT_ID_BY_SERVER_NAME_SQL, server_name)
        return DuplicateServerName(
            "This server name is already taken",
            field_errors={"server_name": "already taken"},
            extra={"registration_id": str(existing) if existing else None},
        )
    return exc


# ---------------------------------------------------------------- reads


async def get_registration(registration_id: UUID) -> func.HttpResponse:
    async with db.connection() as conn:
        row = await conn.fetchrow(SELECT_REGISTRATION_BY_ID_SQL, registration_id)
    if row is None:
        raise NotFound("Registration not found")
    return registration_response(row)


async def get_registration_by_url(query: ByUrlQuery) -> func.HttpResponse:
    async with db.connection() as conn:
        row = await conn.fetchrow(SELECT_REGISTRATION_BY_URL_SQL, query.endpoint_url)
    if row is None:
        raise NotFound("No registration found for this endpoint URL")
    return registration_response(row)


def escape_like(term: str) -> str:
    """A LIKE pattern that matches `term` literally (`%`, `_` and the escape character itself)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


COUNTED_TOTAL_SQL = "SELECT coalesce(sum(row_count), 0)::bigint AS total, NULL::bigint AS generation FROM registration_counts"
# The one search document of a registration: exactly the expression of registrations_search_document_trgm_idx
# (sql/0011), so that the planner finds candidates through that index; the per-column conditions then keep the
# search's meaning (a term never matches across two columns, nor in a column this search does not cover).
SEARCH_DOCUMENT = (
    "(r.endpoint_name || E'\\n' || coalesce(r.description, '') || E'\\n' || r.owner_contact || E'\\n'"
    " || r.endpoint_url || E'\\n' || r.server_name)"
)
SEARCH_FIELDS_CONDITION = (
    "(r.endpoint_name ILIKE $? OR r.description ILIKE $? OR r.owner_contact ILIKE $? OR r.endpoint_url ILIKE $?)"
)
SEARCH_CONDITION = f"({SEARCH_DOCUMENT} ILIKE $? AND {SEARCH_FIELDS_CONDITION})"
# Which way a search page is read, decided when the statement runs: in created_at order, filtering rows until the
# page is full (~(offset + limit) * all / matches rows: best for a common term), or every match through the
# trigram index, then sorted (~matches rows: best for a rare one). The number of matches is the total this
# worker remembers for the term (0 when none: through the index, which the count then needs anyway). Both
# branches are planned, one runs (a one-time filter). Decided by the planner alone, a prepared statement falls
# back to a generic plan that guesses 0.5 % matches for any term and read all 30 000 matches of "github" at 1M
# registrations and sorted them: 500-650 ms a page instead of 7 ms (measured: bench/RESULTS.md, fourth session).
SEARCH_PAGE_SQL = """
    SELECT r.registration_id, r.created_at FROM (
        (SELECT r.registration_id, r.created_at FROM registrations r {ordered_where}
            AND (SELECT common FROM read_in_order)
          ORDER BY r.created_at DESC, r.registration_id DESC LIMIT {limit} OFFSET {offset})
        UNION ALL
        (SELECT r.registration_id, r.created_at FROM registrations r {indexed_where}
            AND NOT (SELECT common FROM read_in_order)
          ORDER BY r.created_at DESC, r.registration_id DESC LIMIT {limit} OFFSET {offset})
    ) r
"""
READ_IN_ORDER_SQL = """
SELECT {matches}::bigint * {matches}::bigint
       > ({limit}::bigint + {offset}::bigint) * (SELECT coalesce(sum(row_count), 0) FROM registration_counts) AS common
"""
# A filtered total (search, submitter) is a count over every matching row: ~170 ms for a common search term at
# 1M registrations. The statement is given the total this worker computed last for the same filters and the
# registration_changes generation it was computed at: while no registration has been inserted, updated or
# deleted since (the generation is bumped in the same transaction as each change), that total is still exact
# and is returned as is; otherwise the count runs again. Uncorrelated, the count is a sub-plan PostgreSQL runs
# only when the CASE reaches it. The generation is the sum of its slots (sql/0009), each of which only grows.
FILTERED_TOTAL_SQL = """
SELECT CASE WHEN c.generation = {generation}::bigint THEN {known_total}::bigint
            ELSE (SELECT count(*) FROM registrations r {where}) END AS total,
       c.generation
  FROM (SELECT sum(generation)::bigint AS generation FROM registration_changes) c
"""
KNOWN_TOTALS_KEPT = 512

TotalKey = tuple[str | None, UUID | None, str | None]
_known_totals: LRUCache[TotalKey, tuple[int, int]] = LRUCache(KNOWN_TOTALS_KEPT)


def known_total(key: TotalKey) -> tuple[int, int] | None:
    """(generation, total) this worker last computed for these filters, if any."""
    return _known_totals.get(key)


def remember_total(key: TotalKey, generation: int, total: int) -> None:
    _known_totals[key] = (generation, total)


def list_registrations_sql(
    *,
    status: str | None,
    submitter_id: UUID | None,
    search: str | None,
    limit: int,
    offset: int,
    known: tuple[int, int] | None = None,
) -> tuple[str, list[Any]]:
    """The statement (and its arguments) that reads one page, newest first, with the filtered total.

    `known` is a (generation, total) pair from an earlier run with the same filters (see FILTERED_TOTAL_SQL).
    The statement returns `total` and, for filtered lists, the `generation` that total is exact at.
    """
    def conditions(search_condition: str) -> tuple[Conditions, str | None]:
        filters = Conditions()
        status_placeholder = filters.add("r.status = $?", status) if status is not None else None
        if submitter_id is not None:
            filters.add("r.submitter_id = $?", submitter_id)
        if search is not None:
            filters.add(search_condition, f"%{escape_like(search)}%")
        return filters, status_placeholder

    filters, status_placeholder = conditions(SEARCH_CONDITION)
    args = list(filters.args)
    if submitter_id is None and search is None:
        # Unfiltered or status-only: the exact total is kept by the database in registration_counts.
        total_sql = COUNTED_TOTAL_SQL
        if status_placeholder is not None:
            total_sql += f" WHERE status = {status_placeholder}"
    else:
        generation, total = known if known is not None else (-1, 0)
        args += [generation, total]
        total_sql = FILTERED_TOTAL_SQL.format(
            generation=f"${len(args) - 1}", known_total=f"${len(args)}", where=filters.where()
        )
    args += [limit, offset]
    limit_placeholder, offset_placeholder = f"${len(args) - 1}", f"${len(args)}"
    page_ids = f"""
        SELECT r.registration_id FROM registrations r {filters.where()}
         ORDER BY r.created_at DESC, r.registration_id DESC
         LIMIT {limit_placeholder} OFFSET {offset_placeholder}"""
    read_in_order = ""
    if search is not None:
        page_ids = SEARCH_PAGE_SQL.format(
            ordered_where=conditions(SEARCH_FIELDS_CONDITION)[0].where(), indexed_where=filters.where(),
            limit=limit_placeholder, offset=offset_placeholder,
        )
        read_in_order = "read_in_order AS ({}),".format(
            READ_IN_ORDER_SQL.format(matches=f"${len(args) - 2}", limit=limit_placeholder, offset=offset_placeholder)
        )
    # The page's ids come from the ordering index alone (an index-only scan when the filter allows), and only
    # those rows are read from the table: a deep offset skips index entries, not table rows.
    sql = f"""
WITH total AS ({total_sql}),
{read_in_order}
page AS (
    SELECT r.* FROM ({page_ids}
    ) ids
    JOIN registrations r ON r.registration_id = ids.registration_id
)
SELECT t.total, t.generation, p.*
  FROM total t
  LEFT JOIN (SELECT {REGISTRATION_COLUMNS} FROM page r {REGISTRATION_JOINS}) p ON true
 ORDER BY p.created_at DESC, p.registration_id DESC
"""
    return sql, args


async def list_registrations_page(
    *,
    status: str | None,
    submitter_id: UUID | None,
    search: str | None,
    limit: int,
    offset: int,
) -> RegistrationList:
    """One page, newest first, and the total of the filtered set, in one round trip."""
    key: TotalKey = (status, submitter_id, search)
    sql, args = list_registrations_sql(
        status=status, submitter_id=submitter_id, search=search, limit=limit, offset=offset, known=known_total(key)
    )
    async with db.connection() as conn:
        rows = await conn.fetch(sql, *args)
    total = int(rows[0]["total"])
    if rows[0]["generation"] is not None:
        remember_total(key, int(rows[0]["generation"]), total)
    results = [registration_from_row(row) for row in rows if row["registration_id"] is not None]
    return RegistrationList(total=total, limit=limit, offset=offset, results=results)


async def list_registrations(query: RegistrationListQuery) -> func.HttpResponse:
    page = await list_registrations_page(
        status=query.status,
        submitter_id=query.submitter_id,
        search=query.search,
        limit=query.limit,
        offset=query.offset,
    )
    return json_response(page)


async def list_my_registrations(query: MyRegistrationsQuery, caller: Caller) -> func.HttpResponse:
    page = await list_registrations_page(
        status=query.status, submitter_id=caller.user_id, search=None, limit=query.limit, offset=query.offset
    )
    return json_response(page)


# ---------------------------------------------------------------- edits and decisions


def accepted_row_versions(if_match: str | None) -> list[int] | None:
    """The row versions an If-Match header accepts (ETags are `"<row_version>"`); None when it accepts any."""
    tags = entity_tags(if_match)
    if tags is None:
        return None
    # Empty when it names nothing this service issued: nothing matches.
    return [int(tag[1:-1]) for tag in tags if re.fullmatch(r'"[0-9]{1,18}"', tag)]


async def update_registration(
    registration_id: UUID, body: RegistrationUpdate, caller: Caller, if_match: str | None
) -> func.HttpResponse:
    requested = body.changes()
    check_namespace(requested.get("server_name"))
    if "available_tools" in requested:
        requested["available_tools"] = _tools_json(body.available_tools)
    try:
        row = await _apply_update(registration_id, requested, caller, if_match)
    except asyncpg.UniqueViolationError as exc:
        # The failed transaction is gone; name the holder of the value from a fresh connection.
        async with db.connection() as conn:
            raise await _conflict(
                conn, exc, requested.get("endpoint_url", ""), requested.get("server_name")
            ) from None
    return registration_response(row)


async def _apply_update(
    registration_id: UUID, requested: dict[str, Any], caller: Caller, if_match: str | None
) -> asyncpg.Record:
    """Edit under a row lock: permission, If-Match and the frozen name are checked on the locked row."""
    async with db.transaction() as conn:
        current = await conn.fetchrow(LOCK_REGISTRATION_SQL, registration_id)
        if current is None:
            raise NotFound("Registration not found")
        if not caller.is_admin and not (current["submitter_id"] == caller.user_id and current["status"] == "Pending"):
            raise Forbidden("Only an admin, or the submitter while the registration is Pending, can edit it")
        versions = accepted_row_versions(if_match)
        if versions is not None and current["row_version"] not in versions:
            raise PreconditionFailed()
        changes = {
            name: {"before": current[name], "after": value}
            for name, value in requested.items()
            if current[name] != value
        }
        if "server_name" in changes and current["status"] == "Approved":
            # Copilot clients key installed servers by name: it never changes after approval.
            raise ValidationFailed(field_errors={"server_name": "cannot change once the registration is approved"})
        if changes:
            new_values = [requested.get(name, current[name]) for name in EDITABLE_FIELDS]
            row = await conn.fetchrow(
                UPDATE_REGISTRATION_SQL, registration_id, *new_values, caller.user_id, {"changes": changes}
            )
        else:
            row = await conn.fetchrow(SELECT_REGISTRATION_BY_ID_SQL, registration_id)
    assert row is not None
    return row


async def decide_registration(
    registration_id: UUID, body: StatusChange, caller: Caller, if_match: str | None
) -> func.HttpResponse:
    """Approve or reject, bound to what the admin reviewed.

    With If-Match, the decision applies only to that version (412 otherwise). The existing frontend sends no
    If-Match, so an approval without it is refused while the registration was edited by someone else within
    APPROVAL_REVIEW_WINDOW_S: the admin's page may predate the edit (a submitter swapping the URL between review
    and approval). Rejecting publishes nothing, so without If-Match it is never held back.
    """
    metadata = {"reason": body.reason} if body.reason is not None else {}
    versions = accepted_row_versions(if_match)
    window = (
        get_registration_settings().approval_review_window_s if body.status == "Approved" and if_match is None else None
    )
    async with db.transaction() as conn:
        # An approval also approves the tool set verified at this moment (shared/verification.py).
        probed = await verification.lock_verification(conn, registration_id) if body.status == "Approved" else None
        if body.status == "Approved":
            metadata.update(verification.approval_metadata(probed))
        row = await conn.fetchrow(
            DECIDE_REGISTRATION_SQL, registration_id, body.status, caller.user_id, metadata, versions, window
        )
        if row is None:
            raise _why_not_decided(await conn.fetchrow(SELECT_DECISION_STATE_SQL, registration_id), versions)
        if body.status == "Approved":
            await verification.approve_current_tools(conn, registration_id, probed, caller)
            row = await conn.fetchrow(SELECT_REGISTRATION_BY_ID_SQL, registration_id)
    assert row is not None
    return registration_response(row)


def _why_not_decided(state: asyncpg.Record | None, versions: list[int] | None) -> Exception:
    if state is None:
        return NotFound("Registration not found")
    if state["status"] != "Pending":
        return InvalidStateTransition(f"Registration is {state['status']}; only a Pending registration can be decided")
    if versions is not None and state["row_version"] not in versions:
        return PreconditionFailed()
    seconds = int(state["edited_seconds_ago"] or 0)
    return PreconditionFailed(
        f"The registration was edited {seconds} s ago, possibly after you loaded it: reload it, review the changes "
        "and approve again (or send its ETag as If-Match)"
    )


async def change_lifecycle(registration_id: UUID, body: LifecycleChange, caller: Caller) -> func.HttpResponse:
    """Deprecate an approved registration with a message (still served, marked `deprecated`), or undo it."""
    async with db.connection() as conn:
        row = await conn.fetchrow(CHANGE_LIFECYCLE_SQL, registration_id, body.status, body.message, caller.user_id)
        if row is None:
            row = await conn.fetchrow(SELECT_REGISTRATION_BY_ID_SQL, registration_id)
            if row is None:
                raise NotFound("Registration not found")
            if row["status"] != "Approved":
                raise InvalidStateTransition(
                    f"Registration is {row['status']}; only an approved registration can be deprecated or reactivated"
                )
    return registration_response(row)


async def delete_registration(registration_id: UUID, caller: Caller) -> func.HttpResponse:
    async with db.connection() as conn:
        deleted = await conn.fetchval(DELETE_REGISTRATION_SQL, registration_id, caller.user_id)
    if deleted is None:
        raise NotFound("Registration not found")
    return no_content()
