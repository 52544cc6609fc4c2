"""Users: created on first sight of a caller, refreshed only when the token's profile changed."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import azure.functions as func

from shared import db
from shared.errors import NotFound
from shared.http import json_response
from shared.models import User

# One statement: claim an imported user (sql/0010) whose old key is the token's `sub` and who has no `oid` yet
# (only when no user has this `oid` already), else insert, or update only when something changed (no write for a
# returning user), or read the existing row. `xmax = 0` tells a fresh insert from an update. A concurrent claim
# of the same row waits for the first and then finds `entra_id` set: its insert meets the claimed row.
UPSERT_USER_SQL = """
WITH claimed AS (
    UPDATE users
       SET entra_id = $2, email = $3, display_name = $4, is_admin = $5
     WHERE tenant_id = $1 AND legacy_sub = $6 AND entra_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND entra_id = $2)
    RETURNING user_id, false AS created
), upserted AS (
    INSERT INTO users (tenant_id, entra_id, email, display_name, is_admin)
    SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM claimed)
    ON CONFLICT (tenant_id, entra_id) DO UPDATE
        SET email = EXCLUDED.email, display_name = EXCLUDED.display_name, is_admin = EXCLUDED.is_admin
        WHERE (users.email, users.display_name, users.is_admin)
              IS DISTINCT FROM (EXCLUDED.email, EXCLUDED.display_name, EXCLUDED.is_admin)
    RETURNING user_id, (xmax = 0) AS created
)
SELECT user_id, created FROM claimed
UNION ALL
SELECT user_id, created FROM upserted
UNION ALL
SELECT user_id, false FROM users
 WHERE tenant_id = $1 AND entra_id = $2 AND NOT EXISTS (SELECT 1 FROM claimed) AND NOT EXISTS (SELECT 1 FROM upserted)
"""

SELECT_USER_SQL = """
SELECT user_id, entra_id, email, display_name, is_admin, created_at, updated_at
  FROM users
 WHERE user_id = $1
"""


@dataclass(frozen=True)
class SignedInUser:
    user_id: UUID
    created: bool


async def upsert_signed_in_user(
    *, tenant_id: UUID, oid: str, sub: str | None, email: str, display_name: str, is_admin: bool
) -> SignedInUser:
    """The caller's user: claimed from an import by (tenant, sub), else found or created by (tenant, oid)."""
    args = (tenant_id, oid, email, display_name, is_admin, sub)
    async with db.connection() as conn:
        row = await conn.fetchrow(UPSERT_USER_SQL, *args)
        if row is None:
            # A concurrent first request inserted the row after this statement's snapshot was taken
            # and nothing needed updating; a new statement sees it.
            row = await conn.fetchrow(UPSERT_USER_SQL, *args)
    if row is None:
        raise RuntimeError("user upsert returned no row twice")
    return SignedInUser(user_id=row["user_id"], created=row["created"])


async def fetch_user(conn: asyncpg.Connection, user_id: UUID) -> User:
    row = await conn.fetchrow(SELECT_USER_SQL, user_id)
    if row is None:
        raise NotFound("User not found")
    return User.model_validate(dict(row))


async def get_user_response(user_id: UUID, *, status: int = 200) -> func.HttpResponse:
    async with db.connection() as conn:
        user = await fetch_user(conn, user_id)
    return json_response(user, status=status)


async def sign_in_response(user_id: UUID, *, created: bool) -> func.HttpResponse:
    """POST /users: the caller's record, 201 when this request's sign-in created it."""
    return await get_user_response(user_id, status=201 if created else 200)
