"""Migration 0008: server names become unique ignoring case; rows breaking the new input rules are reported."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations
from tests.support.migrations import database_before, insert_registration

NAMES_STEP = "0008_names_and_reviewed_edits.py"


@pytest.fixture
async def before_name_rules(pg_server_dsn: str, tmp_path: Path) -> AsyncIterator[asyncpg.Connection]:
    async with database_before(pg_server_dsn, NAMES_STEP, tmp_path) as conn:
        yield conn


async def test_names_differing_only_in_case_stop_the_step_naming_both_and_change_nothing(
    before_name_rules: asyncpg.Connection,
) -> None:
    conn = before_name_rules
    first = await insert_registration(conn, "https://a.example.com/mcp", server_name="com.example.mcp/weather")
    second = await insert_registration(conn, "https://b.example.com/mcp", server_name="com.example.mcp/WEATHER")

    with pytest.raises(MigrationError, match="differ only in case") as refused:
        await apply_migrations(conn, MIGRATIONS_DIR)

    assert str(first) in str(refused.value) and str(second) in str(refused.value)
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE name = $1", NAMES_STEP) == 0
    assert await conn.fetchval("SELECT count(*) FROM information_schema.columns WHERE column_name = 'edited_at'") == 0


async def test_after_the_step_a_name_differing_only_in_case_is_refused_by_the_database(
    before_name_rules: asyncpg.Connection,
) -> None:
    conn = before_name_rules
    await insert_registration(conn, "https://a.example.com/mcp", server_name="com.example.mcp/weather")
    await apply_migrations(conn, MIGRATIONS_DIR)

    with pytest.raises(asyncpg.UniqueViolationError, match="registrations_server_name_key"):
        await insert_registration(conn, "https://b.example.com/mcp", server_name="com.example.mcp/Weather")


async def test_rows_breaking_the_new_input_rules_are_reported_and_left_unchanged(
    before_name_rules: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    conn = before_name_rules
    foreign = await insert_registration(conn, "https://a.example.com/mcp", server_name="io.github.github/github-mcp-server")
    overridden = await insert_registration(conn, "https://b.example.com/mcp", endpoint_name="Weather \u202eredaeR")
    look_alike_tools = await insert_registration(
        conn, "https://c.example.com/mcp", available_tools=json.dumps([{"name": "Tool"}, {"name": "tool"}])
    )
    fine = await insert_registration(conn, "https://d.example.com/mcp", endpoint_name="Fine server")
    before = {row[0]: tuple(row) for row in await conn.fetch("SELECT registration_id, server_name, endpoint_name, available_tools FROM registrations")}

    with caplog.at_level(logging.WARNING, logger="mcp_registry.migrate"):
        assert NAMES_STEP in await apply_migrations(conn, MIGRATIONS_DIR)

    reported = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{foreign} (io.github.github/github-mcp-server): server_name is outside" in reported
    assert f"{overridden} " in reported and "bidirectional" in reported
    assert f"{look_alike_tools} " in reported and "NFKC" in reported
    assert str(fine) not in reported
    after = {row[0]: tuple(row) for row in await conn.fetch("SELECT registration_id, server_name, endpoint_name, available_tools FROM registrations")}
    assert after == before
