"""Apply the ordered migrations in `sql/`: `python -m shared.migrate`.

A migration is a `NNNN_name.sql` file, or a `NNNN_name.py` file for a data migration that needs Python (it
defines `async def migrate(conn)`, runs inside the same transaction, and raises MigrationError to refuse).

Runs in one transaction under a PostgreSQL advisory lock (concurrent runners apply each file once),
records each file in `schema_migrations` with its checksum, and refuses to run when a file that was
already applied has changed. The function app itself never runs DDL.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg

from shared.db_connect import password_provider_for, ssl_context_for
from shared.settings import DatabaseSettings, SettingsError

logger = logging.getLogger("mcp_registry.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"
# Arbitrary constant shared by every runner: "mcp-registry migrations".
ADVISORY_LOCK_KEY = 0x4D43_5052_6567_0001

CREATE_MIGRATIONS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED_SQL = "SELECT name, checksum FROM schema_migrations ORDER BY name"
INSERT_APPLIED_SQL = "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)"


class MigrationError(RuntimeError):
    """The database and the migration files disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    name: str
    source: str
    checksum: str
    path: Path

    async def apply(self, conn: asyncpg.Connection) -> None:
        if self.path.suffix == ".sql":
            await conn.execute(self.source)
            return
        spec = importlib.util.spec_from_file_location(f"migration_{self.path.stem}", self.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        migrate = cast(Callable[[asyncpg.Connection], Awaitable[None]], module.migrate)
        await migrate(conn)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    paths = [*directory.glob("[0-9]*.sql"), *directory.glob("[0-9]*.py")]
    migrations = []
    for path in sorted(paths, key=lambda path: path.name):
        data = path.read_bytes()
        migrations.append(Migration(path.name, data.decode("utf-8"), hashlib.sha256(data).hexdigest(), path))
    return migrations


def pending_migrations(
    migrations: list[Migration], applied: dict[str, str], directory: Path = MIGRATIONS_DIR
) -> list[Migration]:
    """The files still to apply, after checking that every applied one is unchanged and present."""
    by_name = {migration.name: migration for migration in migrations}
    for name, checksum in applied.items():
        migration = by_name.get(name)
        if migration is None:
            raise MigrationError(f"migration {name} was applied but its file is missing from {directory}")
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {name} changed after it was applied (checksum {checksum[:12]}… in the database, "
                f"{migration.checksum[:12]}… on disk); add a new migration instead of editing it"
            )
    return [migration for migration in migrations if migration.name not in applied]


async def apply_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations on `conn`; returns the names applied (empty when up to date).

    One transaction holds a transaction-scoped advisory lock, so concurrent runners apply each file once,
    a failure leaves nothing behind, and the lock cannot outlive the run (it also works through PgBouncer
    in transaction mode, where session locks would stick to a pooled server connection).
    """
    migrations = load_migrations(directory)
    namespace = os.environ.get("MCP_SERVER_NAMESPACE", "").strip()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        if namespace:
            # Backfills that derive MCP server names read the namespace from this setting.
            await conn.execute("SELECT set_config('mcp_registry.namespace', $1, true)", namespace)
        await conn.execute(CREATE_MIGRATIONS_TABLE_SQL)
        applied = {row["name"]: row["checksum"] for row in await conn.fetch(SELECT_APPLIED_SQL)}
        todo = pending_migrations(migrations, applied, directory)
        for migration in todo:
            await migration.apply(conn)
            await conn.execute(INSERT_APPLIED_SQL, migration.name, migration.checksum)
            logger.info("applied migration %s", migration.name)
    return [migration.name for migration in todo]


async def connect(settings: DatabaseSettings) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        settings.database_url,
        ssl=ssl_context_for(settings),
        timeout=settings.acquire_timeout_s,
        password=password_provider_for(settings),
    )
    return conn


async def migrate_database(settings: DatabaseSettings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    conn = await connect(settings)
    try:
        return await apply_migrations(conn, directory)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.migrate", description=__doc__)
    parser.add_argument("--database-url", help="PostgreSQL DSN (default: the DATABASE_URL setting)")
    parser.add_argument(
        "--migrations-dir", type=Path, default=MIGRATIONS_DIR, help="folder of NNNN_*.sql|py files (default: sql/)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        overrides = {"DATABASE_URL": args.database_url} if args.database_url else {}
        settings = DatabaseSettings.from_env({**os.environ, **overrides})
        applied = asyncio.run(migrate_database(settings, args.migrations_dir))
    except (SettingsError, MigrationError) as exc:
        print(f"migration refused: {exc}", file=sys.stderr)
        return 2
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Unreachable server, failed login or a failing migration (rolled back): no traceback, non-zero.
        print(f"migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
