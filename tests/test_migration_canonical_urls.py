"""Migration 0007 brings stored endpoint URLs to their canonical form, and refuses to merge anything."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations
from tests.support.migrations import database_before, insert_registration

CANONICAL_STEP = "0007_canonical_endpoint_urls.py"


@pytest.fixture
async def before_canonical_urls(pg_server_dsn: str, tmp_path: Path) -> AsyncIterator[asyncpg.Connection]:
    async with database_before(pg_server_dsn, CANONICAL_STEP, tmp_path) as conn:
        yield conn


async def stored_urls(conn: asyncpg.Connection) -> dict[uuid.UUID, str]:
    return {row[0]: row[1] for row in await conn.fetch("SELECT registration_id, endpoint_url FROM registrations")}


async def test_distinct_endpoints_in_several_spellings_are_stored_in_their_canonical_form(
    before_canonical_urls: asyncpg.Connection,
) -> None:
    conn = before_canonical_urls
    spellings = {
        "HTTPS://Weather.Example.com:443/mcp": "https://weather.example.com/mcp",
        "https://bücher.example/%6Dcp": "https://xn--bcher-kva.example/mcp",
        "http://tickets.example.com:80/a/../mcp?team=data science": "http://tickets.example.com/mcp?team=data%20science",
        "https://already.example.com/mcp": "https://already.example.com/mcp",
    }
    ids = {await insert_registration(conn, url): canonical for url, canonical in spellings.items()}

    applied = await apply_migrations(conn, MIGRATIONS_DIR)

    assert CANONICAL_STEP in applied
    assert await stored_urls(conn) == ids


async def test_after_the_step_the_database_refuses_user_info_and_fragments(
    before_canonical_urls: asyncpg.Connection,
) -> None:
    conn = before_canonical_urls
    await apply_migrations(conn, MIGRATIONS_DIR)
    for url in ("https://user:secret@host.example.com/mcp", "https://host.example.com/mcp#tools"):
        with pytest.raises(asyncpg.CheckViolationError, match="registrations_endpoint_url_canonical"):
            await insert_registration(conn, url)


async def test_two_spellings_of_one_url_stop_the_step_naming_both_and_change_nothing(
    before_canonical_urls: asyncpg.Connection,
) -> None:
    conn = before_canonical_urls
    first = await insert_registration(conn, "https://dup.example.com/mcp")
    second = await insert_registration(conn, "https://DUP.example.com:443/%6Dcp")
    other = await insert_registration(conn, "HTTPS://other.example.com/mcp")
    before = await stored_urls(conn)

    with pytest.raises(MigrationError) as refused:
        await apply_migrations(conn, MIGRATIONS_DIR)

    message = str(refused.value)
    assert str(first) in message and str(second) in message and str(other) not in message
    assert "https://dup.example.com/mcp" in message and "Nothing was changed" in message
    assert await stored_urls(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE name = $1", CANONICAL_STEP) == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'registrations_endpoint_url_canonical'"
    ) == 0


async def test_a_stored_url_with_user_info_stops_the_step_naming_it(before_canonical_urls: asyncpg.Connection) -> None:
    conn = before_canonical_urls
    with_secret = await insert_registration(conn, "https://user:secret@host.example.com/mcp")
    fine = await insert_registration(conn, "HTTPS://fine.example.com/mcp")

    with pytest.raises(MigrationError, match="no longer accepted") as refused:
        await apply_migrations(conn, MIGRATIONS_DIR)

    assert str(with_secret) in str(refused.value) and str(fine) not in str(refused.value)
    assert (await stored_urls(conn))[fine] == "HTTPS://fine.example.com/mcp"


async def test_once_resolved_the_step_applies_and_a_second_run_changes_nothing(
    before_canonical_urls: asyncpg.Connection,
) -> None:
    conn = before_canonical_urls
    await insert_registration(conn, "https://dup.example.com/mcp")
    second = await insert_registration(conn, "https://DUP.example.com/mcp")
    with pytest.raises(MigrationError):
        await apply_migrations(conn, MIGRATIONS_DIR)
    await conn.execute("DELETE FROM registrations WHERE registration_id = $1", second)

    assert CANONICAL_STEP in await apply_migrations(conn, MIGRATIONS_DIR)
    assert await apply_migrations(conn, MIGRATIONS_DIR) == []
    assert list((await stored_urls(conn)).values()) == ["https://dup.example.com/mcp"]
