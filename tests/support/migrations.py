"""A database of a test's own, migrated up to (not including) a given migration, for data-migration tests."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.migrate import MIGRATIONS_DIR, apply_migrations


@asynccontextmanager
async def database_before(server_dsn: str, migration: str, workdir: Path) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database with every migration before `migration` applied and one user in it;
    the database is dropped afterwards."""
    earlier = workdir / "sql-before"
    earlier.mkdir()
    for path in MIGRATIONS_DIR.iterdir():
        if path.name < migration and path.suffix in {".sql", ".py"}:
            shutil.copy(path, earlier)
    name = f"mcpreg_before_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    parts = urlsplit(server_dsn)
    conn = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment)))
    try:
        await apply_migrations(conn, earlier)
        await conn.execute("INSERT INTO users (tenant_id, entra_id) VALUES (gen_random_uuid(), 'owner')")
        yield conn
    finally:
        await conn.close()
        admin = await asyncpg.connect(server_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def insert_registration(conn: asyncpg.Connection, url: str, **columns: object) -> uuid.UUID:
    """A registration written directly, as an earlier version of the app (or an import) could have."""
    values = {
        "endpoint_url": url,
        "endpoint_name": "Some server",
        "owner_contact": "ops",
        "server_name": f"com.example.mcp/{uuid.uuid4().hex}",
        **columns,
    }
    names = ", ".join(values)
    placeholders = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    registration_id: uuid.UUID = await conn.fetchval(
        f"INSERT INTO registrations ({names}, submitter_id) SELECT {placeholders}, user_id FROM users"
        " RETURNING registration_id",
        *values.values(),
    )
    return registration_id
