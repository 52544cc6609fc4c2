"""The per-worker asyncpg pool: created lazily on first use, shared by every invocation in the worker.

asyncpg pools belong to the event loop that created them, so the pool is remembered together with its
loop; a caller on another loop (tests, a restarted local host) gets a fresh pool instead of a broken one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import asyncpg
from asyncpg.exceptions import InternalClientError

from shared.db_entra import PasswordProvider, entra_token_provider
from shared.errors import ApiError, DatabaseUnavailable, InvalidJson, ValidationFailed
from shared.settings import DatabaseSettings, get_database_settings

logger = logging.getLogger(__name__)

# The pool, its gate and the loop they belong to: created and dropped together.
_worker_pool: tuple[asyncpg.Pool, FairGate, asyncio.AbstractEventLoop] | None = None
_pool_lock: asyncio.Lock | None = None
_lock_loop: asyncio.AbstractEventLoop | None = None


class FairGate:
    """First come, first served admission to the pool: one permit per connection the pool may open.

    asyncpg's pool makes waiters queue on an asyncio.Queue, whose get() lets a request that arrives just as a
    connection comes back take it before the waiter that was woken for it runs; that waiter then queues again
    at the back. Under load a few requests wait for ages while the rest pass: my_registrations at 100
    concurrent requests had a p50 of 10 ms and a p95 of 1.1 s. Here a released permit goes straight to the
    oldest waiter, and nobody passes a waiter, so a holder of a permit always finds an idle connection.
    """

    def __init__(self, permits: int) -> None:
        self._free = permits
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same instant: the permit is ours, hand it on.
                self.release()
            elif waiter in self._waiters:
                # Not there when a release came between the cancellation and this cleanup: it skipped us.
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class RegistryConnection(asyncpg.Connection):
    """The app's connections: closing one whose server is already gone counts as closed, not as an error.

    After a connection failure the pool expires its idle connections, and the next acquire closes such a one
    in a background task that nobody awaits. When the server vanished under it, the goodbye message fails
    (broken pipe, reset, timeout); asyncpg then aborts the socket and re-raises, and asyncio logs the task's
    unretrieved error as an ERROR with a traceback in the middle of an outage that is already answered 503.
    """

    async def close(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        try:
            await super().close(timeout=timeout)
        except (OSError, asyncpg.ConnectionDoesNotExistError) as exc:
            # asyncpg has aborted the socket and released the connection before re-raising.
            logger.info("database connection closed without the server (%s)", type(exc).__name__)


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
    return entra_token_provider(settings)


APPLICATION_NAME = "mcp-registry-api"


def server_settings_for(settings: DatabaseSettings) -> dict[str, str]:
    """Startup parameters of the app's connections.

    JIT compilation pays off for long analytic queries, not for this API's: a search over a large table
    spent ~140 ms compiling per execution before it ran (EXPLAIN ANALYZE, 1M registrations). But PgBouncer
    refuses startup parameters it does not track ("unsupported startup parameter: jit"), so behind one —
    which DB_STATEMENT_CACHE_SIZE=0 means in this app's settings — jit is not sent: set it on the server
    for the app's role or database instead (`ALTER ROLE … SET jit = off`).

    random_page_cost 1.1 is for SSD storage (PostgreSQL's default 4 assumes spinning disks): with 4, the exact
    `total` of a common search term at 1M registrations was a sequential scan (2.6 s); with 1.1 the planner
    uses the trigram indexes (0.16 s). Behind PgBouncer, set it like jit (`ALTER ROLE … SET random_page_cost`).
    """
    server_settings = {"application_name": APPLICATION_NAME}
    if settings.statement_cache_size > 0:
        server_settings["jit"] = "off"
        server_settings["random_page_cost"] = "1.1"
    return server_settings


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
        "connection_class": RegistryConnection,
        "server_settings": server_settings_for(settings),
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
    pool, _ = await _pool_and_gate()
    return pool


async def _pool_and_gate() -> tuple[asyncpg.Pool, FairGate]:
    global _worker_pool
    loop = asyncio.get_running_loop()
    current = _worker_pool
    if current is not None and current[2] is loop:
        return current[0], current[1]
    async with _lock():
        if _worker_pool is None or _worker_pool[2] is not loop:
            settings = get_database_settings()
            pool = asyncpg.create_pool(**pool_options(settings))
            try:
                await pool
            except BaseException:
                pool.terminate()
                raise
            _worker_pool = (pool, FairGate(settings.pool_max_size), loop)
            logger.info(
                "database pool created",
                extra={"pool_min_size": settings.pool_min_size, "pool_max_size": settings.pool_max_size},
            )
        return _worker_pool[0], _worker_pool[1]


async def close_pool() -> None:
    global _worker_pool
    current, _worker_pool = _worker_pool, None
    if current is None:
        return
    pool, _, loop = current
    if loop is asyncio.get_running_loop():
        await pool.close()
    else:
        pool.terminate()


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, waiting at most the acquire timeout before the caller gets a 503.

    Outages: a connection that failed (server restarted, network reset) makes the pool replace all of its
    idle connections on their next use, so the requests after the database is back get fresh ones instead
    of each tripping over another dead connection. Giving a connection back is bounded by the command
    timeout (a hung server must not hold the request) and never turns a finished request into an error:
    a connection that cannot be reset is closed and replaced by the pool.

    Deadlines: when a command timed out or the caller was cancelled (health's own limit), asyncpg is still
    cancelling the command on the server, and the pool's release waits for that, up to the command timeout
    again: a frozen server answered 503 after twice DB_COMMAND_TIMEOUT_S, health after 2 s + that. Such a
    connection is handed back in the background instead; its pool permit is held until it is back, so
    nobody else is given it meanwhile.
    """
    settings = get_database_settings()
    try:
        pool, gate = await _pool_and_gate()
        # One deadline for the wait in line and for opening the connection when the pool has none idle.
        async with asyncio.timeout(settings.acquire_timeout_s):
            await gate.acquire()
            try:
                conn = await pool.acquire()
            except BaseException:
                gate.release()
                raise
    except Exception as exc:
        raise as_api_error(exc) or exc from exc
    handed_back = False
    try:
        # The pool hands out proxies that behave as connections.
        yield cast(asyncpg.Connection, conn)
    except BaseException as exc:
        if is_connection_failure(exc):
            await pool.expire_connections()
        if left_unanswered(exc):
            _in_background(_hand_back(pool, gate, conn, settings.command_timeout_s))
            handed_back = True
        raise
    finally:
        if not handed_back:
            await _hand_back(pool, gate, conn, settings.command_timeout_s)


async def _hand_back(pool: asyncpg.Pool, gate: FairGate, conn: Any, timeout_s: float) -> None:
    try:
        await pool.release(conn, timeout=timeout_s)
    except Exception as exc:
        logger.warning("database connection dropped on release (%s)", type(exc).__name__)
    finally:
        gate.release()


# Hand-backs running in the background (a task nobody references may be collected before it finishes).
_background_tasks: set[asyncio.Task[None]] = set()


def _in_background(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)


def left_unanswered(exc: BaseException) -> bool:
    """True when the server did not answer the last command in time (or the caller stopped waiting)."""
    if isinstance(exc, ApiError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return isinstance(exc, (TimeoutError, asyncio.CancelledError)) or is_connection_failure(exc)


@asynccontextmanager
async def transaction() -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction: committed when the block ends, rolled back when it raises.

    When the server left a command unanswered, the rollback is not awaited here (it would wait for the
    command's cancellation first): the background hand-back's reset rolls back. The transaction is entered as
    `async with` would, so asyncpg's reset knows it is a managed one and rolls it back quietly.
    """
    async with connection() as conn:
        tx = conn.transaction()
        await tx.__aenter__()
        try:
            yield conn
        except BaseException as exc:
            if not left_unanswered(exc):
                await tx.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await tx.__aexit__(None, None, None)


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
    "28",  # invalid authorization (the app cannot log in: credentials or token configuration)
    "53",  # insufficient resources (too many connections, out of memory, disk full)
    "57",  # operator intervention (shutdown, cannot connect now, statement timeout / query canceled)
    "58",  # system error
)
_UNAVAILABLE_SQLSTATES = {
    "25006",  # read_only_sql_transaction: a failover in progress (writes go to a standby)
    "3D000",  # invalid_catalog_name: the database does not exist (yet)
    "40001",  # serialization_failure: transient, the client may retry
    "40P01",  # deadlock_detected: transient, the client may retry
    "55P03",  # lock_not_available
    "55006",  # object_in_use
}
# Values the client sent that PostgreSQL refuses (validation should catch them first): 422, not 500.
_CLIENT_VALUE_SQLSTATES = {
    "22001",  # string_data_right_truncation
    "22003",  # numeric_value_out_of_range
    "22007",  # invalid_datetime_format
    "22008",  # datetime_field_overflow
    "22025",  # invalid_escape_sequence (LIKE patterns)
    "2201B",  # invalid_regular_expression
    "22P02",  # invalid_text_representation
    "23502",  # not_null_violation
    "23514",  # check_violation
    "54000",  # program_limit_exceeded (e.g. a value too large for an index)
}
# Connection-level failures: the connection is gone or the server is going away.
_CONNECTION_SQLSTATES = {"57P01", "57P02", "57P03"}


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc` means the connection (or the server behind it) is gone, not that a query failed."""
    if isinstance(exc, ApiError) and exc.__cause__ is not None:
        exc = exc.__cause__
    # InternalClientError: asyncpg's protocol state broke, e.g. the server's FATAL arrived mid-query.
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, InternalClientError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and (sqlstate.startswith("08") or sqlstate in _CONNECTION_SQLSTATES)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The contract's error for a database failure, or None when it is a bug (→ 500).

    Unavailable (503 + Retry-After): unreachable or refusing server, timeouts (acquire, command, statement
    timeout), shutdowns, failovers, transient conflicts. The client's values (422, or 400 for NUL text):
    data PostgreSQL refuses. Anything else (SQL errors, undefined objects) is ours: None, logged as a 500.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, InternalClientError)):
        return DatabaseUnavailable()
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or sqlstate in _UNAVAILABLE_SQLSTATES:
            return DatabaseUnavailable()
        if sqlstate in {"22021", "22P05"}:
            # Text PostgreSQL cannot store (a NUL character): the client's input, not our fault.
            return InvalidJson("Text values must not contain NUL characters")
        if sqlstate in _CLIENT_VALUE_SQLSTATES:
            return ValidationFailed("A value is not accepted by the database (out of range, too long or malformed)")
    return None
