"""Totals kept by the database (sql/0009) stay exact: under concurrent writes over real HTTP, for statements
writing many rows at once, and for every audit filter the list answers from them."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.counters import counter_mismatches, generation
from tests.support.databases import own_migrated_database
from tests.support.issuer import bearer
from tests.support.registrations import (
    AUDIT_LOGS,
    REGISTRATIONS,
    create_registration,
    decide,
    registration_body,
    user_id_of,
)

TokenFactory = Callable[..., str]


async def api_total(api: httpx.AsyncClient, token: str, path: str, **params: Any) -> int:
    response = await api.get(path, params={**params, "limit": 1}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_totals_equal_counts_after_200_concurrent_creates_edits_decisions_and_deletes(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    started = datetime.now(UTC)
    admin = user_token(admin=True)
    tokens = [user_token() for _ in range(8)]
    user_ids = [await user_id_of(api, token) for token in [admin, *tokens]]
    existing = [await create_registration(api, tokens[n % len(tokens)]) for n in range(120)]
    rng = random.Random(17)
    rng.shuffle(existing)
    to_edit, to_decide, to_delete = existing[:40], existing[40:80], existing[80:120]

    def edit(registration: dict[str, Any]) -> Any:
        return api.patch(
            f"{REGISTRATIONS}/{registration['registration_id']}", json={"endpoint_name": "Edited concurrently"},
            headers=bearer(admin),
        )

    requests = [
        *(api.post(REGISTRATIONS, json=registration_body(), headers=bearer(tokens[n % len(tokens)])) for n in range(80)),
        *(edit(r) for r in to_edit),
        *(decide(api, admin, r["registration_id"], rng.choice(["Approved", "Rejected"])) for r in to_decide),
        *(api.delete(f"{REGISTRATIONS}/{r['registration_id']}", headers=bearer(admin)) for r in to_delete),
    ]
    rng.shuffle(requests)
    responses = await asyncio.gather(*requests)

    assert Counter(response.status_code for response in responses) == {201: 80, 200: 80, 204: 40}
    assert await counter_mismatches(db) == {}
    for status in (None, "Pending", "Approved", "Rejected"):
        params = {"status": status} if status else {}
        expected = await db.fetchval("SELECT count(*) FROM registrations WHERE $1::text IS NULL OR status = $1", status)
        assert await api_total(api, admin, REGISTRATIONS, **params) == expected, status
    audit_filters: list[tuple[dict[str, Any], str, Any]] = [
        ({}, "true", None),
        *(({"action": action}, "action = $1", action) for action in ("Created", "Approved", "Rejected", "Updated", "Deleted")),
        *(({"user_id": user_id}, "user_id = $1", uuid.UUID(user_id)) for user_id in user_ids),
        *(
            ({"registration_id": r["registration_id"]}, "registration_id = $1", uuid.UUID(r["registration_id"]))
            for r in existing[::10]
        ),
    ]
    for params, condition, value in audit_filters:
        args = [value] if value is not None else []
        expected = await db.fetchval(f"SELECT count(*) FROM audit_log WHERE {condition}", *args)
        assert await api_total(api, admin, AUDIT_LOGS, **params) == expected, params
    now = datetime.now(UTC)
    for start, end in [(started, now), (started - timedelta(days=3), now + timedelta(days=2))]:
        expected = await db.fetchval('SELECT count(*) FROM audit_log WHERE "timestamp" BETWEEN $1 AND $2', start, end)
        assert await api_total(api, admin, AUDIT_LOGS, **{"from": iso(start), "to": iso(end)}) == expected


# ---------------------------------------------------------------- time ranges: whole days and their edges


@pytest.fixture
async def dated_entries(db: asyncpg.Connection) -> AsyncIterator[tuple[uuid.UUID, datetime]]:
    """Audit entries every 37 minutes over ten days in a year no other test writes (long past, so that pages of
    other tests, newest first, never reach them), by a user of their own; removed afterwards."""
    base = datetime(2011, 3, 10, tzinfo=UTC)
    user_id = await db.fetchval(
        "INSERT INTO users (tenant_id, entra_id) VALUES (gen_random_uuid(), gen_random_uuid()::text) RETURNING user_id"
    )
    await db.execute(
        """
        INSERT INTO audit_log (registration_id, user_id, action, new_status, "timestamp")
        SELECT gen_random_uuid(), $1, 'Created', 'Pending', $2::timestamptz + n * interval '37 minutes'
          FROM generate_series(0, 10 * 24 * 60 / 37) AS n
        """,
        user_id, base,
    )
    yield user_id, base
    await db.execute("DELETE FROM audit_log WHERE user_id = $1", user_id)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2011-03-11T05:17:00+00:00", "2011-03-16T22:03:00+00:00"),  # partial days at both edges
        ("2011-03-11T00:00:00+00:00", "2011-03-15"),  # whole days only (`to` as a date includes that day)
        ("2011-03-12T10:00:00+00:00", "2011-03-12T18:30:00+00:00"),  # inside one day
        ("2011-03-11T23:00:00+00:00", "2011-03-12T01:00:00+00:00"),  # across one midnight, no whole day
        ("2011-03-13T12:00:00+02:00", "2011-03-15T00:30:00-05:00"),  # offsets other than UTC
        (None, "2011-03-14T07:00:00+00:00"),  # open start
        ("2011-03-14T07:00:00+00:00", None),  # open end
        ("2011-03-14T07:00:00+00:00", "9999-12-31"),  # the last representable day
    ],
)
async def test_time_range_total_equals_a_count_of_the_range(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection,
    dated_entries: tuple[uuid.UUID, datetime], start: str | None, end: str | None,
) -> None:
    params = {key: value for key, value in (("from", start), ("to", end)) if value is not None}
    response = await api.get(AUDIT_LOGS, params={**params, "limit": 1}, headers=bearer(user_token(admin=True)))
    assert response.status_code == 200, response.text
    lower = datetime.fromisoformat(start) if start else datetime.min.replace(tzinfo=UTC)
    upper = (
        datetime.fromisoformat(end) if end and "T" in end
        else datetime.combine(datetime.fromisoformat(end).date(), datetime.max.time(), UTC) if end
        else datetime.max.replace(tzinfo=UTC)
    )

    expected = await db.fetchval('SELECT count(*) FROM audit_log WHERE "timestamp" BETWEEN $1 AND $2', lower, upper)

    assert expected > 0
    assert response.json()["total"] == expected


# ---------------------------------------------------------------- many rows in one statement


@pytest.fixture
async def own_database(pg_server_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with own_migrated_database(pg_server_dsn, "mcpreg_counters") as conn:
        yield conn


async def new_user(conn: asyncpg.Connection) -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO users (tenant_id, entra_id) VALUES (gen_random_uuid(), gen_random_uuid()::text) RETURNING user_id"
    )
    return user_id


async def test_50k_registrations_and_their_audit_entries_in_one_transaction_leave_exact_counters(
    own_database: asyncpg.Connection,
) -> None:
    conn = own_database
    user_id = await new_user(conn)
    before = await generation(conn)

    async with conn.transaction():
        await conn.execute(
            """
            INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, server_name, status, submitter_id,
                                       approver_id, approved_at)
            SELECT 'https://bulk-' || n || '.example.com/mcp', 'Bulk ' || n, 'team', 'com.example.bulk/s-' || n, s.status,
                   $1::uuid, CASE WHEN s.status = 'Pending' THEN NULL ELSE $1::uuid END,
                   CASE WHEN s.status = 'Pending' THEN NULL ELSE now() END
              FROM generate_series(1, 50000) AS n
              CROSS JOIN LATERAL (SELECT (ARRAY['Pending', 'Approved', 'Rejected'])[1 + n % 3] AS status) s
            """,
            user_id,
        )
        await conn.execute(
            """
            INSERT INTO audit_log (registration_id, user_id, action, new_status, "timestamp")
            SELECT registration_id, $1, 'Created', 'Pending', created_at - (random() * interval '90 days')
              FROM registrations
            """,
            user_id,
        )

    assert await conn.fetchval("SELECT count(*) FROM registrations") == 50_000
    assert await counter_mismatches(conn) == {}
    assert await generation(conn) > before
    # One statement wrote 50k rows: each status counter got one row (this backend's slot), not 50k updates.
    assert await conn.fetchval("SELECT count(*) FROM registration_counts WHERE row_count <> 0") == 3


async def test_one_statement_deleting_and_one_changing_many_rows_keep_the_counters_exact(
    own_database: asyncpg.Connection,
) -> None:
    conn = own_database
    user_id = await new_user(conn)
    await conn.execute(
        """
        INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, server_name, submitter_id)
        SELECT 'https://many-' || n || '.example.com/mcp', 'Many ' || n, 'team', 'com.example.many/s-' || n, $1
          FROM generate_series(1, 3000) AS n
        """,
        user_id,
    )
    await conn.execute(
        "INSERT INTO audit_log (registration_id, user_id, action, new_status) SELECT registration_id, $1, 'Created', status"
        " FROM registrations",
        user_id,
    )

    await conn.execute(
        "UPDATE registrations SET status = 'Approved', approver_id = submitter_id, approved_at = now()"
        " WHERE endpoint_name LIKE 'Many 1%'"
    )
    await conn.execute("DELETE FROM registrations WHERE endpoint_name LIKE 'Many 2%'")
    await conn.execute("DELETE FROM audit_log WHERE registration_id IN (SELECT registration_id FROM registrations LIMIT 500)")

    assert await counter_mismatches(conn) == {}
    assert await conn.fetchval("SELECT sum(row_count) FROM registration_counts WHERE status = 'Approved'") > 0


async def test_the_audit_log_refuses_updates(own_database: asyncpg.Connection) -> None:
    conn = own_database
    user_id = await new_user(conn)
    log_id = await conn.fetchval(
        "INSERT INTO audit_log (registration_id, user_id, action) VALUES (gen_random_uuid(), $1, 'Created')"
        " RETURNING log_id",
        user_id,
    )

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE audit_log SET action = 'Deleted' WHERE log_id = $1", log_id)

    assert await conn.fetchval("SELECT action FROM audit_log WHERE log_id = $1", log_id) == "Created"
