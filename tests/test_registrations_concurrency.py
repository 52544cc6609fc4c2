"""Races settled by the database, over real HTTP: one winner, the rest a clean 4xx, and exactly one audit
entry for the change that happened."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import asyncpg
import httpx

from tests.support.registrations import (
    REGISTRATIONS,
    assert_error,
    audit_entries,
    bearer,
    create_registration,
    decide,
    registration_body,
    unique_url,
    user_id_of,
)

TokenFactory = Callable[..., str]


async def signed_in_tokens(api: httpx.AsyncClient, user_token: TokenFactory, count: int, **claims: object) -> list[str]:
    """Tokens of `count` new users whose records already exist, so the race is only the one under test."""
    tokens = [user_token(**claims) for _ in range(count)]
    for token in tokens:
        response = await api.post("/api/users", headers=bearer(token))
        assert response.status_code in (200, 201), response.text
    return tokens


async def test_concurrent_creates_of_one_url_yield_one_201_and_409s_naming_it(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    url = unique_url("race")
    tokens = await signed_in_tokens(api, user_token, 50)

    responses = await asyncio.gather(
        *(api.post(REGISTRATIONS, json=registration_body(endpoint_url=url), headers=bearer(token)) for token in tokens)
    )

    assert Counter(response.status_code for response in responses) == {201: 1, 409: 49}
    winner = next(response.json() for response in responses if response.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            body = assert_error(response, 409, "DUPLICATE_ENDPOINT")
            assert body["registration_id"] == winner["registration_id"]
    assert await db.fetchval("SELECT count(*) FROM registrations WHERE endpoint_url = $1", url) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'Created' AND metadata->>'endpoint_url' = $1", url
        )
        == 1
    )
    trail = await audit_entries(api, user_token(admin=True), registration_id=winner["registration_id"])
    assert [(entry["action"], entry["user_id"]) for entry in trail["results"]] == [("Created", winner["submitter_id"])]


async def test_concurrent_creates_of_one_url_by_one_user_yield_one_201(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    url = unique_url("double-click")
    token = user_token()

    responses = await asyncio.gather(
        *(api.post(REGISTRATIONS, json=registration_body(endpoint_url=url), headers=bearer(token)) for _ in range(10))
    )

    assert Counter(response.status_code for response in responses) == {201: 1, 409: 9}
    assert await db.fetchval("SELECT count(*) FROM registrations WHERE endpoint_url = $1", url) == 1


async def test_concurrent_decisions_yield_one_200_and_409s_with_one_audit_entry(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created = await create_registration(api, user_token())
    admins = await signed_in_tokens(api, user_token, 20, admin=True)
    decisions = ["Approved" if n % 2 == 0 else "Rejected" for n in range(20)]

    responses = await asyncio.gather(
        *(
            decide(api, admin, created["registration_id"], decision, reason=f"decision {n}")
            for n, (admin, decision) in enumerate(zip(admins, decisions, strict=True))
        )
    )

    assert Counter(response.status_code for response in responses) == {200: 1, 409: 19}
    winner_index = next(n for n, response in enumerate(responses) if response.status_code == 200)
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "INVALID_STATE_TRANSITION")
    winner_admin_id = await user_id_of(api, admins[winner_index])
    current = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admins[0]))
    assert current.json()["status"] == decisions[winner_index]
    assert current.json()["approver_id"] == winner_admin_id
    rows = await db.fetch(
        "SELECT action, user_id, metadata FROM audit_log WHERE registration_id = $1 AND action IN ('Approved', 'Rejected')",
        uuid.UUID(created["registration_id"]),
    )
    assert [(row["action"], str(row["user_id"])) for row in rows] == [(decisions[winner_index], winner_admin_id)]


async def test_concurrent_edits_with_one_etag_yield_one_200_and_412s(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text
    registration_id = create.json()["registration_id"]
    etag = create.headers["ETag"]

    responses = await asyncio.gather(
        *(
            api.patch(
                f"{REGISTRATIONS}/{registration_id}",
                json={"description": f"edit {n}"},
                headers=bearer(token, **{"If-Match": etag}),
            )
            for n in range(10)
        )
    )

    assert Counter(response.status_code for response in responses) == {200: 1, 412: 9}
    winner = next(response.json() for response in responses if response.status_code == 200)
    current = await api.get(f"{REGISTRATIONS}/{registration_id}", headers=bearer(token))
    assert current.json()["description"] == winner["description"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE registration_id = $1 AND action = 'Updated'", uuid.UUID(registration_id)
        )
        == 1
    )


async def test_concurrent_deletes_yield_one_204_and_404s_with_one_audit_entry(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created = await create_registration(api, user_token())
    admin = user_token(admin=True)

    responses = await asyncio.gather(
        *(api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin)) for _ in range(10))
    )

    assert Counter(response.status_code for response in responses) == {204: 1, 404: 9}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE registration_id = $1 AND action = 'Deleted'",
            uuid.UUID(created["registration_id"]),
        )
        == 1
    )
