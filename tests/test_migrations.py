"""Migrations against a real PostgreSQL: each test runs them on a fresh, empty database it owns."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, load_migrations
from shared.registrations import SEARCH_CONDITION
from tests.support.databases import create_empty_database, drop_database

ROOT = Path(__file__).resolve().parent.parent

TABLES = {
    "users", "registrations", "audit_log", "registration_counts", "registration_changes", "audit_log_counts_by_action",
    "audit_log_counts_by_user", "audit_log_counts_by_day", "schema_migrations",
}
CONSTRAINTS = {
    "users_tenant_entra_id_key",
    "registrations_endpoint_url_key",
    "registrations_status_check",
    "registrations_endpoint_url_length",
    "registrations_endpoint_name_length",
    "registrations_description_length",
    "registrations_owner_contact_length",
    "registrations_available_tools_array",
    "registrations_decision_consistent",
    "audit_log_action_check",
    "audit_log_previous_status_check",
    "audit_log_new_status_check",
}
INDEXES = {
    "registrations_created_at_idx",
    "registrations_status_created_at_idx",
    "registrations_submitter_created_at_idx",
    "registrations_approver_id_idx",
    "registrations_search_document_trgm_idx",
    "audit_log_timestamp_idx",
    "audit_log_registration_timestamp_idx",
    "audit_log_user_timestamp_idx",
    "audit_log_action_timestamp_idx",
}
TRGM_INDEXES = {name for name in INDEXES if name.endswith("_trgm_idx")}
TRIGGERS = {
    ("users", "users_set_updated_at"),
    ("registrations", "registrations_set_updated_at"),
    ("registrations", "registrations_count_insert"),
    ("registrations", "registrations_count_update"),
    ("registrations", "registrations_count_delete"),
    ("registrations", "registrations_count_truncate"),
    ("audit_log", "audit_log_count_insert"),
    ("audit_log", "audit_log_count_delete"),
    ("audit_log", "audit_log_count_truncate"),
    ("audit_log", "audit_log_append_only"),
}


@pytest.fixture
async def empty_database(pg_server_dsn: str) -> AsyncIterator[str]:
    """A new database with nothing in it, dropped after the test."""
    dsn = await create_empty_database(pg_server_dsn, "mcpreg_migrate")
    yield dsn
    await drop_database(pg_server_dsn, dsn)


async def _migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn, directory)
    finally:
        await conn.close()


def _copy_of_sql(tmp_path: Path) -> Path:
    directory = tmp_path / "sql"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.migrate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---------------------------------------------------------------- a fresh database


async def test_fresh_database_gets_every_table_constraint_index_and_trigger(empty_database: str) -> None:
    applied = await _migrate(empty_database)
    assert applied == [migration.name for migration in load_migrations()]

    conn = await asyncpg.connect(empty_database)
    try:
        tables = {
            row["tablename"] for row in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert TABLES <= tables
        constraints = {row["conname"] for row in await conn.fetch("SELECT conname FROM pg_constraint")}
        assert CONSTRAINTS <= constraints, sorted(CONSTRAINTS - constraints)
        indexes = {
            row["indexname"]: row["indexdef"]
            for row in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        }
        assert set(indexes) >= INDEXES, sorted(INDEXES - set(indexes))
        for name in TRGM_INDEXES:
            assert "USING gin" in indexes[name] and "gin_trgm_ops" in indexes[name], indexes[name]
        triggers = {
            (row["table"], row["tgname"])
            for row in await conn.fetch(
                "SELECT tgrelid::regclass::text AS table, tgname FROM pg_trigger WHERE NOT tgisinternal"
            )
        }
        assert triggers >= TRIGGERS, sorted(TRIGGERS - triggers)
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 1
        recorded = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
        assert [(row["name"], row["checksum"]) for row in recorded] == [
            (migration.name, migration.checksum) for migration in load_migrations()
        ]
    finally:
        await conn.close()


async def test_every_named_object_in_the_sql_files_exists(empty_database: str) -> None:
    await _migrate(empty_database)
    paths = sorted([*MIGRATIONS_DIR.glob("*.sql"), *MIGRATIONS_DIR.glob("*.py")])
    text = "\n".join(path.read_text(encoding="utf-8") for path in paths)
    # Every object a migration names, unless a later migration drops it (a dropped constraint may live on as
    # an index of the same name: 0008).
    dropped = set(re.findall(r"DROP\s+CONSTRAINT\s+(\w+)", text))
    constraints = set(re.findall(r"(?<!DROP )CONSTRAINT\s+(\w+)", text)) - dropped
    indexes = set(re.findall(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF NOT EXISTS\s+)?(\w+)", text)) - set(
        re.findall(r"DROP INDEX\s+(\w+)", text)
    )
    triggers = set(re.findall(r"CREATE\s+TRIGGER\s+(\w+)", text)) - set(re.findall(r"DROP TRIGGER\s+(\w+)", text))
    assert constraints and indexes and triggers
    conn = await asyncpg.connect(empty_database)
    try:
        found_constraints = {row["conname"] for row in await conn.fetch("SELECT conname FROM pg_constraint")}
        found_indexes = {row["indexname"] for row in await conn.fetch("SELECT indexname FROM pg_indexes")}
        found_triggers = {row["tgname"] for row in await conn.fetch("SELECT tgname FROM pg_trigger")}
    finally:
        await conn.close()
    assert constraints <= found_constraints
    assert indexes <= found_indexes
    assert triggers <= found_triggers


async def test_search_uses_the_trigram_index(empty_database: str) -> None:
    await _migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                f"EXPLAIN SELECT 1 FROM registrations r WHERE {SEARCH_CONDITION.replace('$?', chr(39) + '%weather%' + chr(39))}"
            )
        )
    finally:
        await conn.close()
    assert "registrations_search_document_trgm_idx" in plan, plan


async def test_update_triggers_bump_updated_at_and_row_version(empty_database: str) -> None:
    await _migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        user_id = await conn.fetchval(
            "INSERT INTO users (tenant_id, entra_id, updated_at) VALUES ($1, 'oid-1', now() - interval '1 day')"
            " RETURNING user_id",
            uuid.uuid4(),
        )
        await conn.execute("UPDATE users SET display_name = 'Renamed' WHERE user_id = $1", user_id)
        fresh = await conn.fetchval("SELECT updated_at > now() - interval '1 minute' FROM users WHERE user_id = $1", user_id)
        assert fresh is True
        registration_id = await conn.fetchval(
            "INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, submitter_id, server_name)"
            " VALUES ('https://mcp.example.com/a', 'Example', 'team', $1, 'com.example.test/example')"
            " RETURNING registration_id",
            user_id,
        )
        await conn.execute("UPDATE registrations SET endpoint_name = 'Example 2' WHERE registration_id = $1", registration_id)
        assert await conn.fetchval("SELECT row_version FROM registrations WHERE registration_id = $1", registration_id) == 2
        counts = dict(await conn.fetch("SELECT status, sum(row_count)::bigint FROM registration_counts GROUP BY status"))
        assert counts == {"Pending": 1, "Approved": 0, "Rejected": 0}
    finally:
        await conn.close()


# ---------------------------------------------------------------- re-runs, changes and concurrency


async def test_second_run_is_a_no_op(empty_database: str) -> None:
    await _migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        before = await conn.fetch("SELECT name, checksum, applied_at FROM schema_migrations ORDER BY name")
        assert await apply_migrations(conn) == []
        after = await conn.fetch("SELECT name, checksum, applied_at FROM schema_migrations ORDER BY name")
    finally:
        await conn.close()
    assert [tuple(row) for row in after] == [tuple(row) for row in before]


async def test_a_changed_applied_migration_is_refused_and_nothing_else_runs(
    empty_database: str, tmp_path: Path
) -> None:
    await _migrate(empty_database)
    directory = _copy_of_sql(tmp_path)
    first = sorted(directory.glob("0001_*.sql"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n-- edited after it was applied\n", encoding="utf-8")
    (directory / "9999_later.sql").write_text("CREATE TABLE later_table (id int);\n", encoding="utf-8")

    with pytest.raises(MigrationError, match=rf"{first.name} changed after it was applied"):
        await _migrate(empty_database, directory)

    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('later_table')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE name = '9999_later.sql'") == 0
    finally:
        await conn.close()


async def test_an_applied_migration_whose_file_is_missing_is_refused(empty_database: str, tmp_path: Path) -> None:
    await _migrate(empty_database)
    directory = tmp_path / "empty-sql"
    directory.mkdir()
    with pytest.raises(MigrationError, match="file is missing"):
        await _migrate(empty_database, directory)


async def test_a_new_migration_is_applied_after_the_existing_ones(empty_database: str, tmp_path: Path) -> None:
    await _migrate(empty_database)
    directory = _copy_of_sql(tmp_path)
    (directory / "9999_later.sql").write_text("CREATE TABLE later_table (id int);\n", encoding="utf-8")
    assert await _migrate(empty_database, directory) == ["9999_later.sql"]
    assert await _migrate(empty_database, directory) == []


async def test_a_failing_migration_leaves_no_trace(empty_database: str, tmp_path: Path) -> None:
    await _migrate(empty_database)
    directory = _copy_of_sql(tmp_path)
    (directory / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n", encoding="utf-8"
    )
    with pytest.raises(asyncpg.UndefinedTableError):
        await _migrate(empty_database, directory)
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE name = '9999_broken.sql'") == 0
        # The advisory lock was released: another runner gets through.
        assert await apply_migrations(conn) == []
    finally:
        await conn.close()


async def test_two_runners_started_at_once_apply_each_migration_once(empty_database: str) -> None:
    first, second = await asyncpg.connect(empty_database), await asyncpg.connect(empty_database)
    try:
        results = await asyncio.gather(apply_migrations(first), apply_migrations(second))
        recorded = await first.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await first.close()
        await second.close()
    names = [migration.name for migration in load_migrations()]
    assert sorted(results, key=len) == [[], names]
    assert recorded == len(names)


# ---------------------------------------------------------------- the command line


def test_cli_applies_then_reports_up_to_date(empty_database: str) -> None:
    first = _run_cli("--database-url", empty_database)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "0001_initial_schema.sql" in first.stdout
    second = _run_cli("--database-url", empty_database)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


def test_cli_refuses_a_changed_migration_with_a_non_zero_exit(empty_database: str, tmp_path: Path) -> None:
    assert _run_cli("--database-url", empty_database).returncode == 0
    directory = _copy_of_sql(tmp_path)
    first = sorted(directory.glob("0001_*.sql"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("pg_trgm", "pg_trgm "), encoding="utf-8")
    refused = _run_cli("--database-url", empty_database, "--migrations-dir", str(directory))
    assert refused.returncode != 0
    assert "refused" in refused.stderr and first.name in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_fails_cleanly_when_the_server_is_unreachable(unused_tcp_port: int) -> None:
    result = _run_cli("--database-url", f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/postgres")
    assert result.returncode != 0
    assert "migration failed" in result.stderr and "Traceback" not in result.stderr


def test_cli_without_a_database_url_names_the_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.migrate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
