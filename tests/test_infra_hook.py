"""The post-provision hook's database steps (infra/hooks/database_setup.py) against a real PostgreSQL, set up the
way Azure sets it up after `azd provision`: the Entra administrator is an ordinary login role with CREATEROLE (not
a superuser) that owns the application database, because postgres.bicep creates the database after the
administrator.

`pgaadauth_create_principal_with_oid` exists only on Azure. Each test database gets a stand-in with the same
signature that creates the login role (the part the grants depend on), defined by the superuser as Azure's is
defined by the platform; the Entra binding itself (the security label) cannot exist without Azure's label provider.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.hooks.database_setup import SetupError, check_owner, ensure_app_principal, grant_app_role
from shared.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations

PRINCIPAL_STAND_IN_SQL = """
CREATE FUNCTION pgaadauth_create_principal_with_oid(
    role_name text, object_id text, object_type text, is_admin boolean, is_mfa boolean
) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    RETURN format('Created role for "%s"', role_name);
END $$
"""


def _dsn(server_dsn: str, database: str, user: str | None = None) -> str:
    parts = urlsplit(server_dsn)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))


@dataclass(frozen=True)
class Server:
    """A fresh administrator role, its database and the app role's name, on the test server."""

    server_dsn: str
    admin: str
    database: str
    app_role: str
    object_id: str

    def as_admin(self, database: str | None = None) -> str:
        return _dsn(self.server_dsn, database or self.database, self.admin)

    def as_app(self) -> str:
        return _dsn(self.server_dsn, self.database, self.app_role)


@pytest.fixture
async def server(pg_server_dsn: str) -> AsyncIterator[Server]:
    suffix = uuid.uuid4().hex[:10]
    s = Server(pg_server_dsn, f"hook_admin_{suffix}", f"hook_db_{suffix}", f"id-hook-{suffix}", str(uuid.uuid4()))
    root = await asyncpg.connect(pg_server_dsn)
    try:
        await root.execute(f'CREATE ROLE "{s.admin}" LOGIN CREATEROLE')
        await root.execute(f'CREATE DATABASE "{s.database}" OWNER "{s.admin}"')
    finally:
        await root.close()
    conn = await asyncpg.connect(_dsn(pg_server_dsn, s.database))
    try:
        await conn.execute(PRINCIPAL_STAND_IN_SQL)
    finally:
        await conn.close()
    try:
        yield s
    finally:
        root = await asyncpg.connect(pg_server_dsn)
        try:
            await root.execute(f'DROP DATABASE IF EXISTS "{s.database}" WITH (FORCE)')
            await root.execute(f'DROP ROLE IF EXISTS "{s.app_role}"')
            await root.execute(f'DROP ROLE IF EXISTS "{s.admin}"')
        finally:
            await root.close()


async def _deploy_schema(s: Server) -> None:
    """What the hook does after the owner check: migrations, then the app role and its grants."""
    conn = await asyncpg.connect(s.as_admin())
    try:
        await apply_migrations(conn, MIGRATIONS_DIR)
        await ensure_app_principal(conn, s.app_role, s.object_id)
        await grant_app_role(conn, s.app_role, s.database)
    finally:
        await conn.close()


async def test_owner_check_accepts_a_database_its_administrator_owns(server: Server) -> None:
    conn = await asyncpg.connect(server.as_admin())
    try:
        assert await check_owner(conn) == server.admin
    finally:
        await conn.close()


async def test_owner_check_refuses_a_database_created_before_the_administrator(server: Server) -> None:
    # A database owned by someone else (on Azure: the platform's role): since PostgreSQL 15 its public schema
    # belongs to that owner, so the administrator cannot create the tables.
    other = f"{server.database}_other"
    root = await asyncpg.connect(server.server_dsn)
    try:
        await root.execute(f'CREATE DATABASE "{other}"')
        try:
            conn = await asyncpg.connect(server.as_admin(other))
            try:
                with pytest.raises(SetupError, match="created before the Entra administrator"):
                    await check_owner(conn)
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("CREATE TABLE t (id int)")
            finally:
                await conn.close()
        finally:
            await root.execute(f'DROP DATABASE "{other}" WITH (FORCE)')
    finally:
        await root.close()


async def test_administrator_who_owns_the_database_applies_the_migrations(server: Server) -> None:
    conn = await asyncpg.connect(server.as_admin())
    try:
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        applied = await apply_migrations(conn, MIGRATIONS_DIR)
        assert applied == [m.name for m in load_migrations(MIGRATIONS_DIR)]
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 1
    finally:
        await conn.close()


async def test_app_role_reads_and_writes_every_table_but_the_ledger(server: Server) -> None:
    await _deploy_schema(server)
    conn = await asyncpg.connect(server.as_app())
    try:
        rows = await conn.fetch(
            "SELECT tablename, has_table_privilege(current_user, format('public.%I', tablename),"
            " 'SELECT, INSERT, UPDATE, DELETE') AS all_dml,"
            " has_table_privilege(current_user, format('public.%I', tablename), 'INSERT') AS can_insert,"
            " has_table_privilege(current_user, format('public.%I', tablename), 'SELECT') AS can_select"
            " FROM pg_tables WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    by_table = {r["tablename"]: r for r in rows}
    assert len(by_table) > 1
    ledger = by_table.pop("schema_migrations")
    assert ledger["can_select"] and not ledger["can_insert"]
    assert all(r["all_dml"] for r in by_table.values()), [t for t, r in by_table.items() if not r["all_dml"]]


async def test_app_role_cannot_change_the_schema(server: Server) -> None:
    await _deploy_schema(server)
    conn = await asyncpg.connect(server.as_app())
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") > 0  # sentinel: it is connected
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE app_made (id int)")
    finally:
        await conn.close()


async def test_planner_settings_hold_for_the_app_role_from_the_database(server: Server) -> None:
    await _deploy_schema(server)
    conn = await asyncpg.connect(server.as_app())
    try:
        assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SHOW random_page_cost") == "1.1"
        # Set database-wide (setrole 0) by the owner, not on the role.
        settings = await conn.fetchval(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = current_database() AND s.setrole = 0"
        )
        assert {"jit=off", "random_page_cost=1.1"} <= set(settings)
    finally:
        await conn.close()


async def test_schema_deployment_runs_again_without_changes(server: Server) -> None:
    await _deploy_schema(server)
    conn = await asyncpg.connect(server.as_admin())
    try:
        assert await apply_migrations(conn, MIGRATIONS_DIR) == []
        assert await ensure_app_principal(conn, server.app_role, server.object_id) is False
        await grant_app_role(conn, server.app_role, server.database)
    finally:
        await conn.close()
    conn = await asyncpg.connect(server.as_app())
    try:
        assert await conn.fetchval("SHOW jit") == "off"
    finally:
        await conn.close()
