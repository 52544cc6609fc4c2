"""A database in the FastAPI version's schema (the service this one replaces), for the importer's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from tests.support.databases import create_empty_database, drop_database

FASTAPI_SCHEMA_SQL = """
CREATE TABLE users (
    user_id      uuid PRIMARY KEY,
    entra_id     text UNIQUE NOT NULL,
    email        text NOT NULL,
    display_name text,
    is_admin     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY,
    endpoint_url    text UNIQUE NOT NULL,
    endpoint_name   text NOT NULL,
    description     text,
    owner_contact   text NOT NULL,
    available_tools jsonb NOT NULL DEFAULT '[]',
    status          text NOT NULL,
    submitter_id    uuid NOT NULL REFERENCES users (user_id),
    approver_id     uuid REFERENCES users (user_id),
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    approved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE audit_log (
    log_id          uuid PRIMARY KEY,
    registration_id uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (user_id),
    action          text NOT NULL,
    previous_status text,
    new_status      text,
    metadata        jsonb,
    "timestamp"     timestamptz NOT NULL DEFAULT now()
);
"""

# Everything in the source, in one text: equal before and after an import means nothing was written there.
SOURCE_FINGERPRINT_SQL = """
SELECT md5(string_agg(t, E'\\n' ORDER BY t)) FROM (
    SELECT 'u' || u::text AS t FROM users u UNION ALL
    SELECT 'r' || r::text FROM registrations r UNION ALL
    SELECT 'a' || a::text FROM audit_log a
) rows
"""


@asynccontextmanager
async def fastapi_database(server_dsn: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A fresh database in the FastAPI schema: (its DSN, a connection to fill it)."""
    dsn = await create_empty_database(server_dsn, "mcpreg_fastapi")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(FASTAPI_SCHEMA_SQL)
        yield dsn, conn
    finally:
        await conn.close()
        await drop_database(server_dsn, dsn)
