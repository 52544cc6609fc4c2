"""Databases of their own: created on the test server with every migration applied, and dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.migrate import MIGRATIONS_DIR, apply_migrations
from tests.support.pgbouncer import bouncer_dsn_for


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def create_empty_database(server_dsn_: str, prefix: str) -> str:
    """A new database with nothing in it; its DSN on the server itself."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn_)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(server_dsn_, name)


async def create_migrated_database(server_dsn_: str, prefix: str = "mcpreg_test") -> str:
    """A new database with every migration applied; its DSN as the app reaches it (through PgBouncer if so)."""
    dsn = await create_empty_database(server_dsn_, prefix)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, MIGRATIONS_DIR)
    finally:
        await conn.close()
    return bouncer_dsn_for(server_dsn_, dsn)


async def drop_database(server_dsn_: str, dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    admin = await asyncpg.connect(server_dsn_)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def own_migrated_database(server_dsn_: str, prefix: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated database of the test's own (for writes that must not meet other tests' rows)."""
    dsn = await create_migrated_database(server_dsn_, prefix=prefix)
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
        await drop_database(server_dsn_, dsn)
