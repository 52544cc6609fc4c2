"""Running the test suite through PgBouncer in transaction mode (how Azure's built-in PgBouncer pools).

`bash .ci/pgbouncer.sh` starts one on 127.0.0.1:6432 in front of 127.0.0.1:5432. Then TEST_DATABASE_URL on
port 6432 (or TEST_THROUGH_PGBOUNCER=1) makes the fixtures send every app host and the tests' own
connections through it, with asyncpg's prepared-statement cache off (DB_STATEMENT_CACHE_SIZE=0), while
creating databases and running migrations connect to PostgreSQL directly: TEST_MIGRATION_DATABASE_URL, by
default the same URL on port 5432. Migrations never go through PgBouncer — the runner holds a session
advisory lock across statements and transactions, which transaction pooling cannot keep.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

PGBOUNCER_PORT = 6432
POSTGRES_PORT = 5432


def through_pgbouncer() -> bool:
    if os.environ.get("TEST_THROUGH_PGBOUNCER", "").strip().lower() in {"1", "true", "yes"}:
        return True
    explicit = os.environ.get("TEST_DATABASE_URL")
    return bool(explicit) and urlsplit(explicit).port == PGBOUNCER_PORT


def direct_server_dsn(bouncer_dsn: str) -> str:
    """The PostgreSQL server behind the bouncer, for administration and migrations."""
    explicit = os.environ.get("TEST_MIGRATION_DATABASE_URL")
    if explicit:
        return explicit
    parts = urlsplit(bouncer_dsn)
    netloc = f"{parts.netloc.rsplit(':', 1)[0]}:{POSTGRES_PORT}" if parts.port else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def bouncer_dsn_for(server_dsn: str, dsn: str) -> str:
    """A database DSN made on the direct server `server_dsn`, pointed at the bouncer when the suite runs
    through one (unchanged otherwise, and for any other server, e.g. a throwaway cluster)."""
    bouncer = os.environ.get("TEST_DATABASE_URL")
    if not (bouncer and through_pgbouncer()) or server_dsn != direct_server_dsn(bouncer):
        return dsn
    via = urlsplit(bouncer)
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, via.netloc, parts.path, via.query, parts.fragment))


def host_settings() -> dict[str, str]:
    """Settings every app host needs through the bouncer."""
    return {"DB_STATEMENT_CACHE_SIZE": "0"} if through_pgbouncer() else {}
