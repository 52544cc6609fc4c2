"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL, or the embedded server), a fresh migrated
database per test session, a test OpenID issuer on loopback, and the local Functions host serving the
app over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.embedded_db import server_dsn, start_embedded_server
from devtools.local_settings import ROOT
from tests.support.databases import create_migrated_database, drop_database
from tests.support.host import LocalHostProcess, host_environment
from tests.support.issuer import ADMIN_ROLE, TestIssuer
from tests.support.pgbouncer import direct_server_dsn, through_pgbouncer

# Through PgBouncer (tests/support/pgbouncer.py): app hosts and the tests' own connections go through it with
# asyncpg's statement cache off; creating databases and migrations connect to PostgreSQL directly.


def pytest_configure(config: pytest.Config) -> None:
    if not through_pgbouncer():
        return
    # In-process pools (shared.db) and every asyncpg.connect of the tests: no prepared-statement cache.
    os.environ["DB_STATEMENT_CACHE_SIZE"] = "0"
    real_connect = asyncpg.connect

    async def connect_without_statement_cache(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        kwargs.setdefault("statement_cache_size", 0)
        conn: asyncpg.Connection = await real_connect(*args, **kwargs)
        return conn

    asyncpg.connect = connect_without_statement_cache  # type: ignore[assignment]


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A DSN for an administrative database on the server the tests use."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        # Through PgBouncer: administration (CREATE DATABASE, migrations) talks to PostgreSQL itself.
        yield direct_server_dsn(explicit) if through_pgbouncer() else explicit
        return
    server = start_embedded_server(ROOT / ".local" / "test-pgdata")
    yield server_dsn(server)


@pytest.fixture(scope="session")
async def database_url(pg_server_dsn: str) -> AsyncIterator[str]:
    """A fresh database with every migration applied, for this test session."""
    dsn = await create_migrated_database(pg_server_dsn)
    yield dsn
    await drop_database(pg_server_dsn, dsn)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for arranging and checking data (tests own the rows they create)."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def issuer() -> Iterator[TestIssuer]:
    test_issuer = TestIssuer()
    yield test_issuer
    test_issuer.close()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-logs")


@pytest.fixture(scope="session")
def api_host(database_url: str, issuer: TestIssuer, log_dir: Path) -> Iterator[LocalHostProcess]:
    """The shared local host, configured like the example local settings (CORS for the dev SPA)."""
    host = LocalHostProcess(
        host_environment(database_url, issuer), cors="http://localhost:5173", log_path=log_dir / "api.log"
    )
    yield host
    host.stop()


@pytest.fixture
async def api(api_host: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_host.client() as client:
        yield client


@pytest.fixture
def start_host(
    database_url: str, issuer: TestIssuer, log_dir: Path
) -> Iterator[Callable[..., LocalHostProcess]]:
    """Start an extra local host with other settings; stopped after the test."""
    started: list[LocalHostProcess] = []

    def start(cors: str | None = None, app: str | None = None, **env: str) -> LocalHostProcess:
        host = LocalHostProcess(
            host_environment(database_url, issuer, **env),
            cors=cors,
            log_path=log_dir / f"host-{uuid.uuid4().hex[:8]}.log",
            app=app,
        )
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
async def own_api(
    pg_server_dsn: str, start_host: Callable[..., LocalHostProcess]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over HTTP on a database of this test's own (every migration applied, no rows): for totals over
    whole tables, which the shared database's other tests change."""
    dsn = await create_migrated_database(pg_server_dsn, prefix="mcpreg_own")
    try:
        async with start_host(DATABASE_URL=dsn).client() as client:
            yield client
    finally:
        await drop_database(pg_server_dsn, dsn)


@pytest.fixture
def user_token(issuer: TestIssuer) -> Callable[..., str]:
    """Mint a token for a new (or given) user: `user_token(oid=..., email=..., admin=True)`."""

    def mint(*, admin: bool = False, **claims: Any) -> str:
        if admin:
            claims.setdefault("admin_role", ADMIN_ROLE)
        return issuer.token(**claims)

    return mint


@pytest.fixture
def admin_token(user_token: Callable[..., str]) -> str:
    """A token of a new admin."""
    return user_token(admin=True)


@pytest.fixture
def submitter_token(user_token: Callable[..., str]) -> str:
    """A token of a new user, who submits registrations."""
    return user_token()
