"""Migration 0002 adds server_name, version and transport and backfills them for existing rows."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.migrate import MIGRATIONS_DIR, apply_migrations
from tests.support.databases import drop_database


async def test_existing_registrations_get_unique_names_in_the_configured_namespace(
    pg_server_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_first = tmp_path / "sql"
    only_first.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_initial_schema.sql", only_first)
    name = f"mcpreg_backfill_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    parts = urlsplit(pg_server_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, only_first)
        user_id = await conn.fetchval(
            "INSERT INTO users (tenant_id, entra_id) VALUES (gen_random_uuid(), 'oid') RETURNING user_id"
        )
        for index, endpoint_name in enumerate(["Weather API", "Weather API", "  ***  ", "Ops Tickets & Alerts"]):
            await conn.execute(
                "INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, submitter_id, created_at)"
                " VALUES ($1, $2, 'ops', $3, now() + make_interval(secs => $4))",
                f"https://backfill-{index}.example.com/mcp",
                endpoint_name,
                user_id,
                float(index),
            )
        monkeypatch.setenv("MCP_SERVER_NAMESPACE", "com.contoso.mcp")

        applied = await apply_migrations(conn, MIGRATIONS_DIR)

        rows = await conn.fetch(
            "SELECT endpoint_url, server_name, version, transport, registration_id FROM registrations"
            " ORDER BY endpoint_url"
        )
    finally:
        await conn.close()
        await drop_database(pg_server_dsn, dsn)

    assert "0002_mcp_registry_fields.sql" in applied
    names = [row["server_name"] for row in rows]
    assert names[0] == "com.contoso.mcp/weather-api"
    assert names[1] == "com.contoso.mcp/weather-api-" + rows[1]["registration_id"].hex[:8]
    assert names[2] == "com.contoso.mcp/server"
    assert names[3] == "com.contoso.mcp/ops-tickets-alerts"
    assert {row["version"] for row in rows} == {"1.0.0"}
    assert {row["transport"] for row in rows} == {"streamable-http"}
