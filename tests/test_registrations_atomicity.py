"""Atomicity by fault injection: a trigger in the test database makes the audit insert of one chosen change
fail (and only that one, so other tests are undisturbed). The change must not persist, and the API answers
500 with an invocation id and nothing of the database's message."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from tests.support.host import LocalHostProcess
from tests.support.registrations import (
    REGISTRATIONS,
    assert_error,
    bearer,
    create_registration,
    decide,
    registration_body,
)

TokenFactory = Callable[..., str]
SECRET = "injected-fault-7f3a"
FAULT_MESSAGE = f"{SECRET}: INSERT INTO audit_log refused; SELECT password FROM pg_authid"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@asynccontextmanager
async def failing_audit_insert(db: asyncpg.Connection, condition: str) -> AsyncIterator[None]:
    """While inside, inserting an audit_log row for which `condition` (SQL over NEW) holds raises."""
    name = f"test_fail_audit_{uuid.uuid4().hex[:12]}"
    await db.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            IF {condition} THEN
                RAISE EXCEPTION {_literal(FAULT_MESSAGE)};
            END IF;
            RETURN NEW;
        END;
        $fn$;
        CREATE TRIGGER {name} BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {name}();
        """
    )
    try:
        yield
    finally:
        await db.execute(f"DROP TRIGGER IF EXISTS {name} ON audit_log; DROP FUNCTION IF EXISTS {name}();")


def fails_for(registration_id: str, action: str) -> str:
    return f"NEW.registration_id = {_literal(registration_id)}::uuid AND NEW.action = {_literal(action)}"


def assert_internal_error(response: httpx.Response, host: LocalHostProcess) -> None:
    body = assert_error(response, 500, "INTERNAL_ERROR")
    invocation_id = body["invocation_id"]
    assert isinstance(invocation_id, str) and invocation_id
    assert set(body) == {"detail", "error_code", "invocation_id"}
    for leaked in (SECRET, "audit_log", "INSERT", "SELECT", "pg_authid", "Traceback", "asyncpg"):
        assert leaked not in response.text
    assert invocation_id in host.logs()


async def registration_state(db: asyncpg.Connection, registration_id: str) -> tuple[Any, ...]:
    row = await db.fetchrow("SELECT * FROM registrations WHERE registration_id = $1", uuid.UUID(registration_id))
    actions = await db.fetch(
        'SELECT action FROM audit_log WHERE registration_id = $1 ORDER BY "timestamp", log_id', uuid.UUID(registration_id)
    )
    return (dict(row) if row is not None else None, [entry["action"] for entry in actions])


async def counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, sum(row_count)::bigint AS row_count FROM registration_counts GROUP BY status")
    return {row["status"]: row["row_count"] for row in rows}


async def test_create_whose_audit_entry_fails_stores_nothing_and_returns_500(
    api: httpx.AsyncClient, api_host: LocalHostProcess, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    body = registration_body()
    counts_before = await counts(db)

    async with failing_audit_insert(
        db, f"NEW.action = 'Created' AND NEW.metadata->>'endpoint_url' = {_literal(body['endpoint_url'])}"
    ):
        response = await api.post(REGISTRATIONS, json=body, headers=bearer(token))

    assert_internal_error(response, api_host)
    assert await db.fetchval("SELECT count(*) FROM registrations WHERE endpoint_url = $1", body["endpoint_url"]) == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE metadata->>'endpoint_url' = $1", body["endpoint_url"]) == 0
    assert await counts(db) == counts_before
    lookup = await api.get(f"{REGISTRATIONS}/by-url", params={"endpoint_url": body["endpoint_url"]}, headers=bearer(token))
    assert_error(lookup, 404, "NOT_FOUND")


async def test_create_succeeds_once_the_fault_is_removed(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    body = registration_body()
    async with failing_audit_insert(
        db, f"NEW.action = 'Created' AND NEW.metadata->>'endpoint_url' = {_literal(body['endpoint_url'])}"
    ):
        assert (await api.post(REGISTRATIONS, json=body, headers=bearer(token))).status_code == 500

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(token))

    assert response.status_code == 201, response.text


async def test_edit_whose_audit_entry_fails_changes_nothing_and_returns_500(
    api: httpx.AsyncClient, api_host: LocalHostProcess, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text
    registration_id = create.json()["registration_id"]
    before = await registration_state(db, registration_id)

    async with failing_audit_insert(db, fails_for(registration_id, "Updated")):
        response = await api.patch(
            f"{REGISTRATIONS}/{registration_id}",
            json={"endpoint_name": "Never stored", "endpoint_url": f"https://never-{uuid.uuid4().hex}.example.com"},
            headers=bearer(token),
        )

    assert_internal_error(response, api_host)
    assert await registration_state(db, registration_id) == before
    current = await api.get(f"{REGISTRATIONS}/{registration_id}", headers=bearer(token))
    assert current.json() == create.json()
    assert current.headers["ETag"] == create.headers["ETag"]


async def test_decision_whose_audit_entry_fails_leaves_the_registration_pending_and_returns_500(
    api: httpx.AsyncClient, api_host: LocalHostProcess, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created = await create_registration(api, user_token())
    registration_id = created["registration_id"]
    before = await registration_state(db, registration_id)
    counts_before = await counts(db)

    async with failing_audit_insert(db, fails_for(registration_id, "Approved")):
        response = await decide(api, user_token(admin=True), registration_id, "Approved", reason="never")

    assert_internal_error(response, api_host)
    assert await registration_state(db, registration_id) == before
    assert await counts(db) == counts_before
    current = await api.get(f"{REGISTRATIONS}/{registration_id}", headers=bearer(user_token()))
    assert (current.json()["status"], current.json()["approver_id"], current.json()["approved_at"]) == ("Pending", None, None)


async def test_rejection_whose_audit_entry_fails_leaves_the_registration_pending_and_returns_500(
    api: httpx.AsyncClient, api_host: LocalHostProcess, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created = await create_registration(api, user_token())
    registration_id = created["registration_id"]
    before = await registration_state(db, registration_id)

    async with failing_audit_insert(db, fails_for(registration_id, "Rejected")):
        response = await decide(api, user_token(admin=True), registration_id, "Rejected")

    assert_internal_error(response, api_host)
    assert await registration_state(db, registration_id) == before


async def test_delete_whose_audit_entry_fails_keeps_the_registration_and_returns_500(
    api: httpx.AsyncClient, api_host: LocalHostProcess, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    registration_id = created["registration_id"]
    before = await registration_state(db, registration_id)
    counts_before = await counts(db)

    async with failing_audit_insert(db, fails_for(registration_id, "Deleted")):
        response = await api.delete(f"{REGISTRATIONS}/{registration_id}", headers=bearer(admin))

    assert_internal_error(response, api_host)
    assert await registration_state(db, registration_id) == before
    assert await counts(db) == counts_before
    current = await api.get(f"{REGISTRATIONS}/{registration_id}", headers=bearer(admin))
    assert current.status_code == 200
    assert current.json() == created
