"""The per-worker asyncpg pool: created lazily on first use, shared by every invocation in the worker.

asyncpg pools belong to the event loop that created them, so the pool is remembered together with its
loop; a caller on another loop (tests, a restarted local host) gets a fresh pool instead of a broken one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg

from shared.db_connect import pool_options
from shared.db_errors import as_api_error, is_connection_failure, left_unanswered
from shared.settings import get_database_settings

logger = logging.getLogger(__name__)

# The pool, its gate and the loop they belong to: created and dropped together.
#
# The gate admits requests to the pool first come, first served, one permit per connection the pool may open.
# asyncpg's pool makes waiters queue on an asyncio.Queue, whose get() lets a request that arrives just as a
# connection comes back take it before the waiter that was woken for it runs; that waiter then queues again at
# the back. Under load a few requests waited for ages while the rest passed: my_registrations at 100 concurrent
# requests had a p50 of 10 ms and a p95 of 1.1 s. Python 3.11's asyncio.Semaphore hands a released permit
# straight to the oldest waiter and keeps it when a waiter is cancelled (tests/test_db_pool.py checks both), so
# nobody passes a waiter and a holder of a permit always finds an idle connection.
_worker_pool: tuple[asyncpg.Pool, asyncio.Semaphore, asyncio.AbstractEventLoop] | None = None
_pool_lock: asyncio.Lock | None = None
_lock_loop: asyncio.AbstractEventLoop | None = None


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


async def _pool_and_gate() -> tuple[asyncpg.Pool, asyncio.Semaphore]:
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
            _worker_pool = (pool, asyncio.Semaphore(settings.pool_max_size), loop)
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


async def _hand_back(pool: asyncpg.Pool, gate: asyncio.Semaphore, conn: Any, timeout_s: float) -> None:
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
