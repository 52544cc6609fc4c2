"""The per-worker asyncpg pool: created lazily on first use, shared by every invocation in the worker.

asyncpg pools belong to the event loop that created them, so the pool is remembered together with its
loop; a caller on another loop (tests, a restarted local host) gets a fresh pool instead of a broken one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import asyncpg

from shared.errors import ApiError, DatabaseUnavailable, InvalidJson
from shared.settings import DatabaseSettings, get_database_settings

logger = logging.getLogger(__name__)

_pool: asyncpg.Pool | None = None
_pool_loop: asyncio.AbstractEventLoop | None = None
_pool_lock: asyncio.Lock | None = None
_lock_loop: asyncio.AbstractEventLoop | None = None

PasswordProvider = Callable[[], Awaitable[str]]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # asyncpg leaves json/jsonb as text by design; decode them once here for every query.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Run by the pool when a connection comes back, instead of asyncpg's default reset query.

    The default (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) is one more database
    round trip on every release, so a one-query request cost two. The app leaves no session state behind to
    undo: no SET, LISTEN, advisory locks or cursors outside a transaction (migrations take their advisory lock
    on a connection of their own). asyncpg itself still rolls back a transaction left open before this runs.
    """
    return None


def ssl_context_for(settings: DatabaseSettings) -> ssl.SSLContext | Literal["require", False]:
    mode = settings.ssl_mode
    if mode == "disable":
        return False
    if mode == "require":
        return "require"
    context = ssl.create_default_context(cafile=settings.db_ssl_root_cert)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def password_provider_for(settings: DatabaseSettings) -> PasswordProvider | None:
    if settings.database_auth != "entra":
        return None
    from shared.db_entra import entra_token_provider

    return entra_token_provider(settings)


def pool_options(settings: DatabaseSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        "command_timeout": settings.command_timeout_s,
        # Connection establishment is bounded like acquisition: a dead server must not hang requests.
        "timeout": settings.acquire_timeout_s,
        "statement_cache_size": settings.statement_cache_size,
        # Serverless instances idle a lot: give connections back to the server quickly.
        "max_inactive_connection_lifetime": 60.0,
        "ssl": ssl_context_for(settings),
        "init": _init_connection,
        "reset": _reset_connection,
        # JIT compilation pays off for long analytic queries, not for this API's: a search over a large table
        # spent ~140 ms compiling per execution before it ran (EXPLAIN ANALYZE, 1M registrations).
        "server_settings": {"application_name": "mcp-registry-api", "jit": "off"},
    }
    password = password_provider_for(settings)
    if password is not None:
        options["password"] = password
    return options


def _lock() -> asyncio.Lock:
    global _pool_lock, _lock_loop
    loop = asyncio.get_running_loop()
    if _pool_lock is None or _lock_loop is not loop:
        _pool_lock = asyncio.Lock()
        _lock_loop = loop
    return _pool_lock


async def get_pool() -> asyncpg.Pool:
    """The worker's pool, created on first use; concurrent first callers share one creation."""
    global _pool, _pool_loop
    loop = asyncio.get_running_loop()
    if _pool is not None and _pool_loop is loop:
        return _pool
    async with _lock():
        if _pool is None or _pool_loop is not loop:
            settings = get_database_settings()
            pool = asyncpg.create_pool(**pool_options(settings))
            try:
                await pool
            except BaseException:
                pool.terminate()
                raise
            _pool, _pool_loop = pool, loop
            logger.info(
                "database pool created",
                extra={"pool_min_size": settings.pool_min_size, "pool_max_size": settings.pool_max_size},
            )
    return _pool


async def close_pool() -> None:
    global _pool, _pool_loop
    pool, loop = _pool, _pool_loop
    _pool, _pool_loop = None, None
    if pool is None:
        return
    if loop is asyncio.get_running_loop():
        await pool.close()
    else:
        pool.terminate()


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, waiting at most the acquire timeout before the caller gets a 503."""
    settings = get_database_settings()
    try:
        pool = await get_pool()
        conn_cm = pool.acquire(timeout=settings.acquire_timeout_s)
        conn = await conn_cm.__aenter__()
    except Exception as exc:
        raise as_api_error(exc) or exc from exc
    try:
        # The pool hands out proxies that behave as connections.
        yield cast(asyncpg.Connection, conn)
    finally:
        await conn_cm.__aexit__(None, None, None)


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    async with connection() as conn, conn.transaction():
        yield conn


class Conditions:
    """WHERE conditions with positional parameters: only fixed SQL fragments ever enter the text."""

    def __init__(self) -> None:
        self.fragments: list[str] = []
        self.args: list[Any] = []

    def add(self, fragment: str, value: Any) -> str:
        """Add a condition whose every `$?` stands for `value`; returns the placeholder used."""
        self.args.append(value)
        placeholder = f"${len(self.args)}"
        self.fragments.append(fragment.replace("$?", placeholder))
        return placeholder

    def add_if_set(self, fragment: str, value: Any) -> None:
        if value is not None:
            self.add(fragment, value)

    def where(self) -> str:
        return "WHERE " + " AND ".join(self.fragments) if self.fragments else ""


_UNAVAILABLE_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "53",  # insufficient resources (too many connections, out of memory, disk full)
    "57",  # operator intervention (shutdown, cannot connect now, query canceled by timeout)
    "58",  # system error
)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The contract's error for a database failure, or None when it is a bug (→ 500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError)):
        return DatabaseUnavailable()
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES):
            return DatabaseUnavailable()
        if sqlstate in {"22021", "22P05"}:
            # Text PostgreSQL cannot store (a NUL character): the client's input, not our fault.
            return InvalidJson("Text values must not contain NUL characters")
    return None
