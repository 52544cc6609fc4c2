"""The bulk-load path (devtools.bulk_load): one transaction, counters exact afterwards, indexes as before."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from devtools.bulk_load import bulk_load
from tests.support.counters import counter_mismatches, generation
from tests.support.databases import own_migrated_database

INDEXES_SQL = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('registrations', 'audit_log') ORDER BY 1"
T0 = datetime(2025, 2, 1, tzinfo=UTC)


@pytest.fixture
async def conn(pg_server_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with own_migrated_database(pg_server_dsn, "mcpreg_bulk") as connection:
        yield connection


def rows(count: int, user_id: uuid.UUID) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    registrations, audit = [], []
    for n in range(count):
        registration_id = uuid.uuid4()
        status = ("Pending", "Approved", "Rejected")[n % 3]
        created = T0 + timedelta(minutes=n)
        decided = None if status == "Pending" else created + timedelta(hours=1)
        registrations.append((
            registration_id, f"https://bulk-{n}.example.com/mcp", f"Bulk server {n}", None, "team", "[]", status,
            user_id, None if status == "Pending" else user_id, created, decided, created, decided or created,
            f"com.example.bulk/s-{n}", "1.0.0", "streamable-http",
        ))
        audit.append((uuid.uuid4(), registration_id, user_id, "Created", None, "Pending", json.dumps({}), created))
        if decided is not None:
            audit.append((uuid.uuid4(), registration_id, user_id, status, "Pending", status, "{}", decided))
    return registrations, audit


def user(user_id: uuid.UUID) -> tuple[Any, ...]:
    return (user_id, uuid.uuid4(), "oid-bulk", None, "bulk@example.com", "Bulk", False, T0, T0)


async def test_a_load_into_an_empty_database_builds_the_same_indexes_and_leaves_exact_counters(
    conn: asyncpg.Connection,
) -> None:
    indexes_before = await conn.fetch(INDEXES_SQL)
    user_id = uuid.uuid4()
    registrations, audit = rows(3000, user_id)

    loaded = await bulk_load(conn, users=[user(user_id)], registrations=registrations, audit_entries=audit)

    assert (loaded.users, loaded.registrations, loaded.audit_entries) == (1, 3000, 5000)
    assert loaded.rebuilt_indexes > 0
    assert await conn.fetch(INDEXES_SQL) == indexes_before
    assert await counter_mismatches(conn) == {}
    assert await generation(conn) > 0


async def test_a_load_into_a_database_in_use_keeps_its_indexes_and_counters_exact(conn: asyncpg.Connection) -> None:
    user_id = uuid.uuid4()
    first, first_audit = rows(10, user_id)
    await bulk_load(conn, users=[user(user_id)], registrations=first, audit_entries=first_audit)
    more, more_audit = rows(500, user_id)
    more = [(r[0], r[1].replace("bulk-", "more-"), *r[2:13], r[13].replace("/s-", "/m-"), *r[14:]) for r in more]

    loaded = await bulk_load(conn, registrations=more, audit_entries=more_audit)

    assert loaded.rebuilt_indexes == 0
    assert await conn.fetchval("SELECT count(*) FROM registrations") == 510
    assert await counter_mismatches(conn) == {}


async def test_a_failing_load_leaves_nothing_behind(conn: asyncpg.Connection) -> None:
    indexes_before = await conn.fetch(INDEXES_SQL)
    user_id = uuid.uuid4()
    registrations, audit = rows(1000, user_id)
    audit[-1] = (*audit[-1][:3], "Renamed", *audit[-1][4:])  # an action the schema refuses, read last

    with pytest.raises(asyncpg.CheckViolationError):
        await bulk_load(conn, users=[user(user_id)], registrations=registrations, audit_entries=audit)

    assert await conn.fetchval("SELECT count(*) FROM users WHERE user_id = $1", user_id) == 0
    assert await conn.fetchval("SELECT count(*) FROM registrations") == 0
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    assert await conn.fetch(INDEXES_SQL) == indexes_before
    assert await counter_mismatches(conn) == {}
