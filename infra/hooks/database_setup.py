"""Data-plane steps of the post-provision hook (infra/hooks/postprovision.sh), run as the PostgreSQL Entra
administrator with the connection settings the hook exports (DATABASE_URL, DATABASE_AUTH=password, PGPASSWORD =
an Entra token, DB_SSL):

    python -m infra.hooks.database_setup check-owner   # before the migrations
    python -m infra.hooks.database_setup app-role      # after them (APP_IDENTITY_NAME, APP_IDENTITY_PRINCIPAL_ID)

Both are idempotent. tests/test_infra_hook.py runs them against a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.db_connect import ssl_context_for
from shared.settings import DatabaseSettings


class SetupError(RuntimeError):
    """The server is not in a state the hook can fix by itself; the message says what to do."""


OWNER_SQL = """
SELECT pg_get_userbyid(datdba) AS owner, has_schema_privilege('public', 'CREATE') AS can_create
FROM pg_database WHERE datname = current_database()
"""
ROLE_EXISTS_SQL = "SELECT 1 FROM pg_roles WHERE rolname = $1"
# pgaadauth_create_principal_with_oid(role name, object id, object type, is admin, is MFA): the role is bound to
# the managed identity's object id instead of being looked up by display name.
CREATE_PRINCIPAL_SQL = "SELECT * FROM pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)"
# The platform records the binding as the role's pgaadauth security label ("aadauth,oid=<object id>,...").
PRINCIPAL_LABEL_SQL = """
SELECT l.label FROM pg_shseclabel l JOIN pg_roles r ON r.oid = l.objoid
WHERE l.provider = 'pgaadauth' AND r.rolname = $1
"""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def check_owner(conn: asyncpg.Connection) -> str:
    """The database's owner, when the connected administrator may create tables in its public schema."""
    row = await conn.fetchrow(OWNER_SQL)
    assert row is not None
    if not row["can_create"]:
        raise SetupError(
            f"the database is owned by {row['owner']!r} and the administrator cannot create tables in its public"
            " schema: it was created before the Entra administrator existed. Drop it (az postgres flexible-server"
            " db delete) and run `azd provision` again: infra/modules/postgres.bicep creates it after the"
            " administrator."
        )
    owner: str = row["owner"]
    return owner


async def ensure_app_principal(conn: asyncpg.Connection, role: str, object_id: str) -> bool:
    """Create the app's login role bound to object_id (connected to the `postgres` database); True if created."""
    if not await conn.fetchval(ROLE_EXISTS_SQL, role):
        await conn.execute(CREATE_PRINCIPAL_SQL, role, object_id)
        return True
    label = await conn.fetchval(PRINCIPAL_LABEL_SQL, role)
    if label and object_id.lower() not in label.lower():
        raise SetupError(
            f"role {role} is bound to another identity ({label}); an identity deleted and created again gets a new"
            " object id. Drop the role and run the hook again."
        )
    return False


def grant_statements(role: str, database: str) -> list[str]:
    r = ident(role)
    return [
        f"GRANT CONNECT ON DATABASE {ident(database)} TO {r}",
        # No DDL for the app (PostgreSQL < 15 still lets PUBLIC create in schema public).
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        # Tables created by later migrations (run by this administrator) get the same grants.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
        # The migration ledger is read-only for the app.
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE schema_migrations FROM {r}",
        # Planner settings the app sends at connect time, set on the database so they also hold behind
        # PgBouncer (which refuses them as startup parameters): see shared/db_connect.py. The database owner may
        # ALTER DATABASE; ALTER ROLE on the platform-created app role would need ADMIN OPTION (PostgreSQL 16).
        f"ALTER DATABASE {ident(database)} SET jit = off",
        f"ALTER DATABASE {ident(database)} SET random_page_cost = 1.1",
    ]


async def grant_app_role(conn: asyncpg.Connection, role: str, database: str) -> None:
    """Data access without DDL for the app's role, in the application database (connected to it)."""
    async with conn.transaction():
        for statement in grant_statements(role, database):
            await conn.execute(statement)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def main(step: str) -> None:
    url = os.environ["DATABASE_URL"]
    ssl = ssl_context_for(DatabaseSettings.from_env())
    if step == "check-owner":
        conn = await asyncpg.connect(url, ssl=ssl)
        try:
            print(f"database owner {await check_owner(conn)}: the administrator can create tables")
        finally:
            await conn.close()
        return
    role, object_id = os.environ["APP_IDENTITY_NAME"], os.environ["APP_IDENTITY_PRINCIPAL_ID"]
    database = urlsplit(url).path.lstrip("/")
    # Entra principals are created from the `postgres` database.
    conn = await asyncpg.connect(_with_database(url, "postgres"), ssl=ssl)
    try:
        created = await ensure_app_principal(conn, role, object_id)
        print(f"{'created' if created else 'kept'} role {role} for object id {object_id}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(url, ssl=ssl)
    try:
        await grant_app_role(conn, role, database)
        print(f"granted data access on {database} to {role}")
    finally:
        await conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in {"check-owner", "app-role"}:
        sys.exit("usage: python -m infra.hooks.database_setup check-owner|app-role")
    try:
        asyncio.run(main(sys.argv[1]))
    except SetupError as exc:
        sys.exit(f"postprovision: {exc}")
