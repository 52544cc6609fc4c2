"""Moving in from the FastAPI version: `python -m devtools.import_fastapi --from-dsn …` against a real database in
that version's schema, then the imported user signing in here with a token whose `sub` is their old key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.counters import counter_mismatches
from tests.support.fastapi_source import SOURCE_FINGERPRINT_SQL, fastapi_database
from tests.support.issuer import TENANT_ID, bearer
from tests.support.registrations import AUDIT_LOGS

ROOT = Path(__file__).resolve().parent.parent
TokenFactory = Callable[..., str]
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    dsn: str
    submitter_id: uuid.UUID
    submitter_sub: str
    admin_id: uuid.UUID
    pending_id: uuid.UUID
    approved_id: uuid.UUID
    rejected_id: uuid.UUID
    first_spelling_id: uuid.UUID
    second_spelling_id: uuid.UUID
    deleted_id: uuid.UUID
    host: str


async def fill_source(conn: asyncpg.Connection, dsn: str) -> Source:
    tag = uuid.uuid4().hex[:10]
    host = f"legacy-{tag}.example.com"
    submitter, admin = uuid.uuid4(), uuid.uuid4()
    submitter_sub = f"legacy-sub-{tag}"
    await conn.executemany(
        "INSERT INTO users (user_id, entra_id, email, display_name, is_admin, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $6)",
        [
            (submitter, submitter_sub, f"sam-{tag}@example.com", None, False, T0),
            (admin, f"legacy-admin-{tag}", f"ada-{tag}@example.com", "Ada Admin", True, T0),
        ],
    )
    ids = [uuid.uuid4() for _ in range(5)]
    pending, approved, rejected, first_spelling, second_spelling = ids
    # (id, URL, name, status, approver, created, decided)
    rows = [
        (pending, f"https://{host}/pending", "Pending server", "Pending", None, T0 + timedelta(hours=1), None),
        (approved, f"https://{host}/approved", "Approved server", "Approved", admin, T0 + timedelta(hours=2),
         T0 + timedelta(hours=5)),
        (rejected, f"https://{host}/rejected", "Rejected server", "Rejected", admin, T0 + timedelta(hours=3),
         T0 + timedelta(hours=6)),
        # Two spellings of one URL: the later one is reported and not imported.
        (first_spelling, f"HTTPS://{host.upper()}:443/same", "First spelling", "Pending", None,
         T0 + timedelta(hours=4), None),
        (second_spelling, f"https://{host}/%73ame", "Second spelling", "Pending", None, T0 + timedelta(hours=7), None),
    ]
    await conn.executemany(
        """
        INSERT INTO registrations (registration_id, endpoint_url, endpoint_name, description, owner_contact,
                                   available_tools, status, submitter_id, approver_id, submitted_at, approved_at,
                                   created_at, updated_at)
        VALUES ($1, $2, $3, 'Imported from FastAPI', 'team@example.com', '[{"name": "lookup"}]', $4, $8, $5,
                $6::timestamptz, $7::timestamptz, $6::timestamptz, coalesce($7::timestamptz, $6::timestamptz))
        """,
        [(*row, submitter) for row in rows],
    )
    deleted = uuid.uuid4()
    snapshot = {"snapshot": {"endpoint_url": f"https://{host}/deleted", "endpoint_name": "Deleted server"}}
    audit = [
        # A JSON string inside the jsonb column, as the FastAPI version sometimes stored it.
        (pending, submitter, "Created", None, "Pending", json.dumps(json.dumps({"endpoint_name": "Pending server"})),
         T0 + timedelta(hours=1)),
        (approved, submitter, "Created", None, "Pending", json.dumps({}), T0 + timedelta(hours=2)),
        (approved, admin, "Approved", "Pending", "Approved", json.dumps({"reason": "ok"}), T0 + timedelta(hours=5)),
        (rejected, admin, "Rejected", "Pending", "Rejected", None, T0 + timedelta(hours=6)),
        (second_spelling, submitter, "Created", None, "Pending", json.dumps({}), T0 + timedelta(hours=7)),
        (deleted, submitter, "Created", None, "Pending", json.dumps({}), T0 + timedelta(hours=8)),
        (deleted, admin, "Deleted", "Pending", None, json.dumps(snapshot), T0 + timedelta(hours=9)),
    ]
    await conn.executemany(
        "INSERT INTO audit_log (log_id, registration_id, user_id, action, previous_status, new_status, metadata,"
        ' "timestamp") VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6::jsonb, $7)',
        audit,
    )
    return Source(dsn, submitter, submitter_sub, admin, pending, approved, rejected, first_spelling, second_spelling,
                  deleted, host)


@pytest.fixture
async def source(pg_server_dsn: str) -> AsyncIterator[Source]:
    async with fastapi_database(pg_server_dsn) as (dsn, conn):
        yield await fill_source(conn, dsn)


def run_importer(source_dsn: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DB_SSL": "disable", "ENTRA_TENANT_ID": TENANT_ID,
           "MCP_SERVER_NAMESPACE": "com.example.imported"}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.import_fastapi", "--from-dsn", source_dsn],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def summary_line(output: str, table: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{table}:"))


async def test_import_keeps_registrations_audit_history_and_reports_a_url_collision(
    source: Source, database_url: str, db: asyncpg.Connection
) -> None:
    result = run_importer(source.dsn, database_url)

    assert summary_line(result.stdout, "users") == "users: imported 2, skipped 0 (imported earlier), reported 0"
    assert summary_line(result.stdout, "registrations") == (
        "registrations: imported 4, skipped 0 (imported earlier), reported 1"
    )
    assert summary_line(result.stdout, "audit_log") == "audit_log: imported 6, skipped 0 (imported earlier), reported 1"
    assert f"registration {source.second_spelling_id}:" in result.stdout
    assert str(source.first_spelling_id) in result.stdout
    rows = {
        row["registration_id"]: row
        for row in await db.fetch("SELECT * FROM registrations WHERE endpoint_url LIKE $1", f"https://{source.host}/%")
    }
    assert set(rows) == {source.pending_id, source.approved_id, source.rejected_id, source.first_spelling_id}
    assert rows[source.first_spelling_id]["endpoint_url"] == f"https://{source.host}/same"
    assert (rows[source.approved_id]["status"], rows[source.approved_id]["approver_id"]) == ("Approved", source.admin_id)
    assert rows[source.rejected_id]["status"] == "Rejected"
    assert rows[source.pending_id]["created_at"] == T0 + timedelta(hours=1)
    assert rows[source.pending_id]["server_name"] == "com.example.imported/pending-server"
    assert (rows[source.pending_id]["version"], rows[source.pending_id]["transport"]) == ("1.0.0", "streamable-http")
    trail = await db.fetch(
        'SELECT action, metadata FROM audit_log WHERE registration_id = $1 ORDER BY "timestamp"', source.deleted_id
    )
    assert [row["action"] for row in trail] == ["Created", "Deleted"]
    assert json.loads(trail[1]["metadata"])["snapshot"]["endpoint_name"] == "Deleted server"
    decoded = await db.fetchval("SELECT metadata FROM audit_log WHERE registration_id = $1", source.pending_id)
    assert json.loads(decoded) == {"endpoint_name": "Pending server"}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE registration_id = $1", source.second_spelling_id) == 0
    assert await counter_mismatches(db) == {}


async def test_a_second_import_imports_nothing_and_says_so(
    source: Source, database_url: str, db: asyncpg.Connection
) -> None:
    run_importer(source.dsn, database_url)
    entries = await db.fetchval("SELECT count(*) FROM audit_log WHERE user_id = $1", source.submitter_id)
    assert entries > 0

    again = run_importer(source.dsn, database_url)

    assert summary_line(again.stdout, "users") == "users: imported 0, skipped 2 (imported earlier), reported 0"
    assert summary_line(again.stdout, "registrations").startswith("registrations: imported 0, skipped 4")
    assert summary_line(again.stdout, "audit_log").startswith("audit_log: imported 0, skipped 6")
    assert "nothing imported" in again.stdout
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE user_id = $1", source.submitter_id) == entries


async def test_the_import_writes_nothing_to_the_source(source: Source, database_url: str) -> None:
    conn = await asyncpg.connect(source.dsn)
    try:
        before = await conn.fetchval(SOURCE_FINGERPRINT_SQL)
        run_importer(source.dsn, database_url)
        assert await conn.fetchval(SOURCE_FINGERPRINT_SQL) == before
    finally:
        await conn.close()


async def test_an_imported_user_signing_in_with_their_old_sub_becomes_that_user(
    source: Source, database_url: str, api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    run_importer(source.dsn, database_url)
    new_oid = str(uuid.uuid4())
    token = user_token(oid=new_oid, extra={"sub": source.submitter_sub})

    me = await api.get("/api/users/me", headers=bearer(token))
    mine = await api.get("/api/registrations/my", headers=bearer(token))
    again = await api.get("/api/users/me", headers=bearer(user_token(oid=new_oid)))

    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == str(source.submitter_id)
    assert me.json()["entra_id"] == new_oid
    assert {r["registration_id"] for r in mine.json()["results"]} == {
        str(source.pending_id), str(source.approved_id), str(source.rejected_id), str(source.first_spelling_id)
    }
    # From then on the user is matched by (tenant, oid), whatever the sub.
    assert again.json()["user_id"] == str(source.submitter_id)


async def test_an_imported_user_is_never_matched_by_email(
    source: Source, database_url: str, api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    run_importer(source.dsn, database_url)
    email = await db.fetchval("SELECT email FROM users WHERE user_id = $1", source.submitter_id)

    me = await api.get("/api/users/me", headers=bearer(user_token(email=email)))

    assert me.status_code == 200, me.text
    assert me.json()["user_id"] != str(source.submitter_id)
    assert await db.fetchval("SELECT entra_id FROM users WHERE user_id = $1", source.submitter_id) is None


async def test_imported_audit_entries_are_listed_with_exact_totals(
    source: Source, database_url: str, api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    run_importer(source.dsn, database_url)

    page = await api.get(AUDIT_LOGS, params={"user_id": str(source.admin_id)}, headers=bearer(user_token(admin=True)))

    assert page.status_code == 200, page.text
    assert page.json()["total"] == 3
    assert [entry["action"] for entry in page.json()["results"]] == ["Deleted", "Rejected", "Approved"]
