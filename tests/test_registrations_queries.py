"""The SQL the code runs, planned by PostgreSQL at 50k registrations (and ~100k audit entries): selective
queries use indexes, a first page is read from an index in `created_at` order, and offset paging is stable.

The EXPLAIN checks talk to PostgreSQL directly, on a database of their own, with the exact statements the
code builds (`list_registrations_sql`, `list_audit_sql` and the SQL constants) — never a copy of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from shared.audit import list_audit_sql
from shared.models import AuditLogQuery
from shared.registrations import SELECT_REGISTRATION_BY_URL_SQL, list_registrations_sql
from tests.support.databases import create_migrated_database, drop_database
from tests.support.registrations import AUDIT_LOGS, REGISTRATIONS, bearer, create_registration

TokenFactory = Callable[..., str]
Plan = dict[str, Any]

REGISTRATION_ROWS = 50_000
USERS = 1_000
TIES = 7  # rows sharing each created_at value, so order ties are broken by the id
TENANT = "6f1c2a4e-8b3d-4c5e-9f70-123456789abc"

FILL_SQL = f"""
INSERT INTO users (tenant_id, entra_id, email, display_name, is_admin)
SELECT '{TENANT}', 'oid-' || g, 'user' || g || '@example.com', 'User ' || g, g <= 10
  FROM generate_series(1, {USERS}) AS g;

CREATE TEMP TABLE numbered_users AS
SELECT row_number() OVER (ORDER BY entra_id) AS n, user_id FROM users;

-- 10% Pending, 30% Rejected, 60% Approved; created_at shared by groups of {TIES} rows.
INSERT INTO registrations (
    endpoint_url, endpoint_name, description, owner_contact, available_tools, server_name, status,
    submitter_id, approver_id, submitted_at, approved_at, created_at
)
SELECT 'https://srv-' || g || '.example.com/mcp',
       'Server ' || substr(md5(g::text), 1, 12),
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'Serves ' || md5((g * 7)::text) END,
       'team-' || (g % 500) || '@example.com',
       '[{{"name": "search"}}]'::jsonb,
       'com.example.mcp/srv-' || g,
       st.status,
       submitter.user_id,
       CASE WHEN st.status = 'Pending' THEN NULL ELSE approver.user_id END,
       ts.at,
       CASE WHEN st.status = 'Pending' THEN NULL ELSE ts.at + interval '1 hour' END,
       ts.at
  FROM generate_series(1, {REGISTRATION_ROWS}) AS g
  CROSS JOIN LATERAL (SELECT CASE WHEN g % 10 = 0 THEN 'Pending' WHEN g % 10 < 4 THEN 'Rejected' ELSE 'Approved' END AS status) st
  CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + (g / {TIES}) * interval '1 minute' AS at) ts
  JOIN numbered_users submitter ON submitter.n = 1 + g % {USERS}
  JOIN numbered_users approver ON approver.n = 1 + g % 10;

INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata, "timestamp")
SELECT registration_id, submitter_id, 'Created', NULL, 'Pending',
       jsonb_build_object('endpoint_url', endpoint_url), created_at
  FROM registrations;
INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata, "timestamp")
SELECT registration_id, approver_id, status, 'Pending', status, '{{}}'::jsonb, approved_at
  FROM registrations WHERE status <> 'Pending';
INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata, "timestamp")
SELECT registration_id, submitter_id, 'Updated', status, status, '{{"changes": {{}}}}'::jsonb, created_at + interval '30 seconds'
  FROM registrations WHERE endpoint_name LIKE 'Server a%';
INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata, "timestamp")
SELECT gen_random_uuid(), (SELECT user_id FROM numbered_users WHERE n = 1), 'Deleted', 'Approved', NULL,
       '{{"snapshot": {{}}}}'::jsonb, timestamptz '2025-01-01 00:00:00+00' + g * interval '7 minutes'
  FROM generate_series(1, 1000) AS g;
"""

INDEX_DEFINITIONS_SQL = """
SELECT indexname, indexdef
  FROM pg_indexes
 WHERE schemaname = current_schema()
   AND tablename IN ('registrations', 'audit_log')
   AND indexname NOT IN (SELECT conname FROM pg_constraint)
"""


@pytest.fixture(scope="module")
async def big_db(pg_server_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A database of its own with 50k registrations, analysed, for the planner checks."""
    dsn = await create_migrated_database(pg_server_dsn, prefix="mcpreg_explain")
    conn = await asyncpg.connect(dsn)
    try:
        # Indexes are built once after the fill (fast) rather than row by row; the same definitions the
        # migrations created, read back from the catalog.
        indexes = await conn.fetch(INDEX_DEFINITIONS_SQL)
        assert indexes
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await conn.execute(FILL_SQL)
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE")
        yield conn
    finally:
        await conn.close()
        await drop_database(pg_server_dsn, dsn)


async def explain(conn: asyncpg.Connection, sql: str, args: list[Any], *, analyze: bool = False) -> Plan:
    options = "ANALYZE, BUFFERS OFF, TIMING OFF, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = await conn.fetchval(f"EXPLAIN ({options}) {sql}", *args)
    plan: Plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


def nodes(plan: Plan) -> Iterator[Plan]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def scans_of(plan: Plan, table: str) -> list[Plan]:
    return [node for node in nodes(plan) if node.get("Relation Name") == table]


def seq_scans_of(plan: Plan, table: str) -> list[Plan]:
    # With ANALYZE, a branch a one-time filter skipped shows "Actual Loops": 0: it read nothing.
    return [node for node in scans_of(plan, table) if node["Node Type"] == "Seq Scan" and node.get("Actual Loops") != 0]


def describe(plan: Plan, depth: int = 0) -> str:
    line = "  " * depth + f"{plan['Node Type']} {plan.get('Relation Name', '')} {plan.get('Index Name', '')}".rstrip()
    return "\n".join([line, *(describe(child, depth + 1) for child in plan.get("Plans", []))])


def assert_no_seq_scan(plan: Plan, table: str) -> None:
    assert seq_scans_of(plan, table) == [], describe(plan)
    assert scans_of(plan, table), describe(plan)


def assert_first_page_read_in_index_order(plan: Plan, table: str, index: str, limit: int) -> None:
    """The page's ids come from `index`, in order, under a Limit with no Sort between, reading ≤ limit entries;
    the only other reads of `table` fetch those rows by primary key."""
    scans = scans_of(plan, table)
    ordered = [scan for scan in scans if scan.get("Index Name") == index]
    by_key = [scan for scan in scans if scan.get("Index Name") == f"{table}_pkey"]
    assert ordered and len(ordered) + len(by_key) == len(scans), describe(plan)
    for scan in ordered:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), describe(plan)
        assert scan["Actual Rows"] * scan["Actual Loops"] <= limit, describe(plan)
    assert sum(scan["Actual Rows"] * scan["Actual Loops"] for scan in by_key) <= limit, describe(plan)
    limits = [node for node in nodes(plan) if node["Node Type"] == "Limit"]
    assert any(
        any(scan in list(nodes(node)) for scan in ordered)
        and not any(inner["Node Type"] in ("Sort", "Incremental Sort") for inner in nodes(node))
        for node in limits
    ), describe(plan)


async def some_value(conn: asyncpg.Connection, sql: str) -> Any:
    value = await conn.fetchval(sql)
    assert value is not None
    return value


def registrations_list(**filters: Any) -> tuple[str, list[Any]]:
    arguments: dict[str, Any] = {"status": None, "submitter_id": None, "search": None, "limit": 100, "offset": 0}
    arguments.update(filters)
    return list_registrations_sql(**arguments)


# ---------------------------------------------------------------- registrations: no sequential scans


async def test_by_url_uses_an_index(big_db: asyncpg.Connection) -> None:
    url = await some_value(big_db, "SELECT endpoint_url FROM registrations ORDER BY registration_id LIMIT 1")

    plan = await explain(big_db, SELECT_REGISTRATION_BY_URL_SQL, [url])

    assert_no_seq_scan(plan, "registrations")


async def test_list_by_submitter_uses_an_index(big_db: asyncpg.Connection) -> None:
    submitter_id = await some_value(big_db, "SELECT submitter_id FROM registrations LIMIT 1")

    plan = await explain(big_db, *registrations_list(submitter_id=submitter_id))

    assert_no_seq_scan(plan, "registrations")


@pytest.mark.parametrize("status", [None, "Pending", "Approved", "Rejected"])
async def test_my_registrations_use_an_index(big_db: asyncpg.Connection, status: str | None) -> None:
    # GET /registrations/my is the list with the caller as submitter and an optional status.
    submitter_id = await some_value(big_db, "SELECT submitter_id FROM registrations ORDER BY created_at LIMIT 1")

    plan = await explain(big_db, *registrations_list(submitter_id=submitter_id, status=status, limit=100))

    assert_no_seq_scan(plan, "registrations")


@pytest.mark.parametrize(
    "term_sql",
    [
        "SELECT substr(endpoint_name, 8, 8) FROM registrations ORDER BY registration_id LIMIT 1",
        "SELECT substr(description, 10, 10) FROM registrations WHERE description IS NOT NULL LIMIT 1",
        "SELECT split_part(endpoint_url, '/', 3) FROM registrations LIMIT 1",
        "SELECT 'no-such-term-anywhere'",
    ],
    ids=["name", "description", "url_host", "no_match"],
)
async def test_search_uses_trigram_indexes(big_db: asyncpg.Connection, term_sql: str) -> None:
    term = await some_value(big_db, term_sql)

    plan = await explain(big_db, *registrations_list(search=term), analyze=True)

    assert_no_seq_scan(plan, "registrations")


async def test_search_for_a_common_term_reads_the_page_in_created_at_order(big_db: asyncpg.Connection) -> None:
    # "Serves" starts every description but a quarter of the rows: ~37 500 of 50 000 match.
    sql, args = registrations_list(search="serves", limit=20)
    first = await big_db.fetch(sql, *args)
    known = (first[0]["generation"], first[0]["total"])

    plan = await explain(big_db, *registrations_list(search="serves", limit=20, known=known), analyze=True)

    executed = [node for node in scans_of(plan, "registrations") if node.get("Actual Loops") != 0]
    assert {node.get("Index Name") for node in executed} == {"registrations_created_at_idx", "registrations_pkey"}, (
        describe(plan)
    )
    assert all(node["Actual Rows"] <= 20 for node in executed), describe(plan)


async def test_search_for_a_rare_term_reads_its_matches_through_the_trigram_index(big_db: asyncpg.Connection) -> None:
    term = await some_value(big_db, "SELECT split_part(endpoint_url, '/', 3) FROM registrations LIMIT 1")
    sql, args = registrations_list(search=term, limit=20)
    first = await big_db.fetch(sql, *args)
    known = (first[0]["generation"], first[0]["total"])

    plan = await explain(big_db, *registrations_list(search=term, limit=20, known=known), analyze=True)

    executed = [node for node in scans_of(plan, "registrations") if node.get("Actual Loops") != 0]
    assert any(node.get("Index Name") == "registrations_search_document_trgm_idx" for node in nodes(plan)), describe(plan)
    assert all(node.get("Index Name") != "registrations_created_at_idx" for node in executed), describe(plan)


async def test_search_combined_with_status_uses_an_index(big_db: asyncpg.Connection) -> None:
    term = await some_value(big_db, "SELECT substr(endpoint_name, 8, 8) FROM registrations LIMIT 1")

    plan = await explain(big_db, *registrations_list(search=term, status="Approved"), analyze=True)

    assert_no_seq_scan(plan, "registrations")


# ---------------------------------------------------------------- registrations: first pages in index order


async def test_unfiltered_first_page_is_read_from_the_created_at_index(big_db: asyncpg.Connection) -> None:
    plan = await explain(big_db, *registrations_list(limit=100), analyze=True)

    assert_first_page_read_in_index_order(plan, "registrations", "registrations_created_at_idx", limit=100)


@pytest.mark.parametrize("status", ["Pending", "Approved", "Rejected"])
async def test_status_filtered_first_page_is_read_from_the_status_index(
    big_db: asyncpg.Connection, status: str
) -> None:
    plan = await explain(big_db, *registrations_list(status=status, limit=100), analyze=True)

    assert_first_page_read_in_index_order(plan, "registrations", "registrations_status_created_at_idx", limit=100)


async def test_a_deep_offset_skips_index_entries_and_reads_only_the_pages_rows(big_db: asyncpg.Connection) -> None:
    await big_db.execute("VACUUM (ANALYZE) registrations")  # index-only scans need the visibility map

    plan = await explain(big_db, *registrations_list(limit=20, offset=20_000), analyze=True)

    ordered = [scan for scan in scans_of(plan, "registrations") if scan.get("Index Name") == "registrations_created_at_idx"]
    assert [scan["Node Type"] for scan in ordered] == ["Index Only Scan"], describe(plan)
    assert ordered[0]["Heap Fetches"] == 0, describe(plan)
    fetched = [scan for scan in scans_of(plan, "registrations") if scan.get("Index Name") == "registrations_pkey"]
    assert sum(scan["Actual Rows"] * scan["Actual Loops"] for scan in fetched) == 20, describe(plan)


async def test_registrations_are_vacuumed_often_enough_to_keep_list_pages_index_only(big_db: asyncpg.Connection) -> None:
    # The plan above reads the table for every entry on a page VACUUM has not marked all-visible; with the
    # defaults (20 %) the newest rows, which lists read first, could stay unmarked for 200 000 inserts at 1M.
    options = await big_db.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'registrations'::regclass")
    assert {"autovacuum_vacuum_insert_scale_factor=0.01", "autovacuum_vacuum_scale_factor=0.02"} <= set(options)


async def test_unfiltered_total_comes_with_the_page_in_one_statement(big_db: asyncpg.Connection) -> None:
    sql, args = registrations_list(limit=3)

    rows = await big_db.fetch(sql, *args)

    assert [row["total"] for row in rows] == [REGISTRATION_ROWS] * 3


async def test_a_bloated_counts_table_never_makes_a_list_start_parallel_workers(big_db: asyncpg.Connection) -> None:
    # The planner sizes a table by its pages, and registration_counts bloated by old row versions looks big
    # (19 MB seen: 168 000 rows expected for 3, and workers started for every list). These settings make every
    # table look worth workers, as that bloat does (sql/0006).
    async with big_db.transaction():
        await big_db.execute(
            "SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL parallel_setup_cost = 0;"
            " SET LOCAL parallel_tuple_cost = 0"
        )
        plan = await explain(big_db, *registrations_list(limit=20))

    counts = [node for node in nodes(plan) if node.get("Relation Name") == "registration_counts"]
    assert counts, describe(plan)
    assert not [node for node in counts if node.get("Parallel Aware")], describe(plan)


# ---------------------------------------------------------------- remembered filtered totals


def count_scans(plan: Plan) -> list[Plan]:
    """The Aggregate nodes that count registrations (the filtered total's sub-plan)."""
    return [
        node
        for node in nodes(plan)
        if node["Node Type"] == "Aggregate" and any(scans_of(child, "registrations") for child in node.get("Plans", []))
    ]


async def test_a_remembered_total_is_returned_without_counting_while_no_registration_changed(
    big_db: asyncpg.Connection,
) -> None:
    term = await some_value(big_db, "SELECT substr(endpoint_name, 8, 4) FROM registrations LIMIT 1")
    sql, args = registrations_list(search=term, limit=5)
    first = await big_db.fetch(sql, *args)
    generation, total = first[0]["generation"], first[0]["total"]
    assert total > 5

    sql, args = registrations_list(search=term, limit=5, known=(generation, total))
    plan = await explain(big_db, sql, args, analyze=True)
    again = await big_db.fetch(sql, *args)

    assert [node["Actual Loops"] for node in count_scans(plan)] == [0], describe(plan)
    assert [row["total"] for row in again] == [total] * 5
    assert [row["registration_id"] for row in again] == [row["registration_id"] for row in first]


async def test_a_remembered_total_from_an_older_generation_is_counted_again(big_db: asyncpg.Connection) -> None:
    term = await some_value(big_db, "SELECT substr(endpoint_name, 8, 4) FROM registrations LIMIT 1")
    sql, args = registrations_list(search=term, limit=5)
    first = await big_db.fetch(sql, *args)
    stale = (first[0]["generation"] - 1, 123_456_789)

    sql, args = registrations_list(search=term, limit=5, known=stale)
    plan = await explain(big_db, sql, args, analyze=True)
    rows = await big_db.fetch(sql, *args)

    assert [node["Actual Loops"] for node in count_scans(plan)] == [1], describe(plan)
    assert rows[0]["total"] == first[0]["total"]


GENERATION_SQL = "SELECT sum(generation) FROM registration_changes"
# Each statement changes registrations; together they leave the shared data as it was (other tests count it).
NEUTRAL_CHANGES = [
    "INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, server_name, submitter_id)"
    " SELECT 'https://generation.example.com/mcp', 'Generation', 'x', 'com.example.mcp/generation', user_id"
    "   FROM users LIMIT 1",
    "UPDATE registrations SET description = description WHERE endpoint_url = 'https://generation.example.com/mcp'",
    "DELETE FROM registrations WHERE endpoint_url = 'https://generation.example.com/mcp'",
]


async def test_each_committed_insert_update_and_delete_bumps_the_generation(big_db: asyncpg.Connection) -> None:
    before = await big_db.fetchval(GENERATION_SQL)
    seen = []
    async with big_db.transaction():
        for change in NEUTRAL_CHANGES:
            await big_db.execute(change)
            seen.append(await big_db.fetchval(GENERATION_SQL))

    assert seen == [before + 1, before + 2, before + 3]
    assert await big_db.fetchval(GENERATION_SQL) == before + 3


async def test_a_rolled_back_change_leaves_the_generation_as_it_was(big_db: asyncpg.Connection) -> None:
    before = await big_db.fetchval(GENERATION_SQL)
    transaction = big_db.transaction()
    await transaction.start()
    try:
        await big_db.execute(NEUTRAL_CHANGES[0])
        assert await big_db.fetchval(GENERATION_SQL) == before + 1
    finally:
        await transaction.rollback()

    assert await big_db.fetchval(GENERATION_SQL) == before


# ---------------------------------------------------------------- audit log: no sequential scans


async def audit_plan(conn: asyncpg.Connection, **params: Any) -> Plan:
    sql, args = list_audit_sql(AuditLogQuery.model_validate(params))
    return await explain(conn, sql, args)


async def test_audit_by_registration_uses_an_index(big_db: asyncpg.Connection) -> None:
    registration_id = await some_value(big_db, "SELECT registration_id FROM registrations LIMIT 1")

    plan = await audit_plan(big_db, registration_id=str(registration_id))

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_by_user_uses_an_index(big_db: asyncpg.Connection) -> None:
    user_id = await some_value(big_db, "SELECT submitter_id FROM registrations ORDER BY created_at DESC LIMIT 1")

    plan = await audit_plan(big_db, user_id=str(user_id))

    assert_no_seq_scan(plan, "audit_log")


@pytest.mark.parametrize("action", ["Created", "Approved", "Rejected", "Updated", "Deleted"])
async def test_audit_by_action_uses_an_index(big_db: asyncpg.Connection, action: str) -> None:
    plan = await audit_plan(big_db, action=action)

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_by_date_window_uses_an_index(big_db: asyncpg.Connection) -> None:
    latest: datetime = await some_value(big_db, 'SELECT max("timestamp") FROM audit_log')

    plan = await audit_plan(big_db, **{"from": (latest - timedelta(hours=6)).isoformat(), "to": latest.isoformat()})

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_from_alone_uses_an_index(big_db: asyncpg.Connection) -> None:
    latest: datetime = await some_value(big_db, 'SELECT max("timestamp") FROM audit_log')

    plan = await audit_plan(big_db, **{"from": (latest - timedelta(hours=6)).isoformat()})

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_to_alone_uses_an_index(big_db: asyncpg.Connection) -> None:
    earliest: datetime = await some_value(big_db, 'SELECT min("timestamp") FROM audit_log')

    plan = await audit_plan(big_db, to=(earliest + timedelta(hours=6)).isoformat())

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_user_action_and_window_combined_use_an_index(big_db: asyncpg.Connection) -> None:
    row = await big_db.fetchrow('SELECT user_id, "timestamp" FROM audit_log WHERE action = \'Approved\' LIMIT 1')
    assert row is not None

    plan = await audit_plan(
        big_db,
        user_id=str(row["user_id"]),
        action="Approved",
        **{"from": (row["timestamp"] - timedelta(days=1)).isoformat(), "to": row["timestamp"].isoformat()},
    )

    assert_no_seq_scan(plan, "audit_log")


async def test_audit_unfiltered_first_page_is_read_from_the_timestamp_index(big_db: asyncpg.Connection) -> None:
    sql, args = list_audit_sql(AuditLogQuery(limit=50))

    plan = await explain(big_db, sql, args, analyze=True)

    page_scans = [node for node in scans_of(plan, "audit_log") if node.get("Index Name") == "audit_log_timestamp_idx"]
    assert page_scans and all(node["Actual Rows"] <= 50 for node in page_scans), describe(plan)


# ---------------------------------------------------------------- stable paging


async def test_walking_offset_pages_in_sql_returns_every_row_once(big_db: asyncpg.Connection) -> None:
    expected = [
        row["registration_id"]
        for row in await big_db.fetch(
            "SELECT registration_id FROM registrations WHERE status = 'Pending' ORDER BY created_at DESC, registration_id DESC"
        )
    ]
    seen: list[uuid.UUID] = []
    for offset in range(0, len(expected) + 500, 500):
        sql, args = registrations_list(status="Pending", limit=500, offset=offset)
        seen += [row["registration_id"] for row in await big_db.fetch(sql, *args) if row["registration_id"] is not None]

    assert len(seen) == len(set(seen)) == len(expected)
    assert seen == expected


async def test_walking_my_registrations_over_http_returns_every_row_once_despite_tied_timestamps(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    first = await create_registration(api, token)
    submitter_id = uuid.UUID(first["submitter_id"])
    # 23 more rows of this user in three groups that share a created_at (arranged directly: the API stamps now()).
    await db.execute(
        """
        INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, server_name, submitter_id, created_at, submitted_at)
        SELECT 'https://tie-' || gen_random_uuid() || '.example.com/', 'Tied ' || g, 'team',
               'com.example.tests/tie-' || replace(gen_random_uuid()::text, '-', ''), $1,
               now() - (g % 3) * interval '1 hour', now() - (g % 3) * interval '1 hour'
          FROM generate_series(1, 23) AS g
        """,
        submitter_id,
    )
    expected = [
        str(row["registration_id"])
        for row in await db.fetch(
            "SELECT registration_id FROM registrations WHERE submitter_id = $1 ORDER BY created_at DESC, registration_id DESC",
            submitter_id,
        )
    ]

    seen: list[str] = []
    for offset in range(0, 30, 4):
        response = await api.get(f"{REGISTRATIONS}/my", params={"limit": 4, "offset": offset}, headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 24
        seen += [row["registration_id"] for row in response.json()["results"]]

    assert seen == expected
    assert len(set(seen)) == 24


async def test_walking_audit_pages_over_http_returns_every_entry_once_despite_tied_timestamps(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    registration_id = uuid.UUID(created["registration_id"])
    await db.execute(
        """
        INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata, "timestamp")
        SELECT $1, $2, 'Updated', 'Pending', 'Pending', jsonb_build_object('n', g), timestamptz '2025-06-01 12:00:00+00'
          FROM generate_series(1, 17) AS g
        """,
        registration_id,
        uuid.UUID(created["submitter_id"]),
    )

    seen: list[str] = []
    for offset in range(0, 21, 3):
        response = await api.get(
            AUDIT_LOGS, params={"registration_id": str(registration_id), "limit": 3, "offset": offset}, headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        seen += [entry["log_id"] for entry in response.json()["results"]]

    assert len(seen) == len(set(seen)) == 18
