"""The floor: the SQL a scenario runs, issued directly with asyncpg at the same concurrency, no HTTP.

The SQL is not copied: `capture` runs the app's own handler function once (inside a transaction that is
rolled back) with `shared.db.connection` replaced by a recorder, and keeps every (method, sql, args) it
issued. `run_floor` then replays that template per request, swapping the captured variant's values for
each request's own (ids, URLs, unique tokens), over a pool with the app's size and driver settings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared import db, db_connect
from shared.settings import get_database_settings

Call = tuple[str, str, tuple[Any, ...]]


class _Recorder:
    """Looks like an asyncpg connection to the app; records and forwards every query."""

    def __init__(self, conn: asyncpg.Connection, calls: list[Call]) -> None:
        self._conn, self._calls = conn, calls

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._conn, name)
        if name not in {"fetch", "fetchrow", "fetchval", "execute"}:
            return target

        async def call(sql: str, *args: Any, **kwargs: Any) -> Any:
            self._calls.append((name, sql, args))
            return await target(sql, *args, **kwargs)

        return call

    def transaction(self) -> Any:
        self._calls.append(("transaction", "", ()))
        return self._conn.transaction()


async def capture(dsn: str, call_app: Callable[[], Awaitable[Any]]) -> list[Call]:
    """The queries the app issues for one request (run for real, then rolled back)."""
    calls: list[Call] = []
    conn = await asyncpg.connect(dsn)
    try:
        await db_connect._init_connection(conn)
        outer = conn.transaction()
        await outer.start()

        @asynccontextmanager
        async def recording_connection() -> AsyncIterator[Any]:
            yield _Recorder(conn, calls)

        original_connection = db.connection
        db.connection = recording_connection  # type: ignore[assignment]
        try:
            await call_app()
        except Exception:  # a 404 or 409 still tells us the SQL
            pass
        finally:
            db.connection = original_connection  # type: ignore[assignment]
            await outer.rollback()
    finally:
        await conn.close()
    if any(method == "transaction" for method, _, _ in calls):
        raise NotImplementedError("explicit transactions are not replayed by the floor")
    return calls


def substitute(value: Any, mapping: list[tuple[Any, Any]]) -> Any:
    for old, new in mapping:
        if type(value) is type(old) and value == old:
            return new
    if isinstance(value, str):
        for old, new in mapping:
            if isinstance(old, str) and old in value:
                value = value.replace(old, str(new))
        return value
    if isinstance(value, dict):
        return {key: substitute(item, mapping) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, mapping) for item in value]
    if isinstance(value, tuple):
        return tuple(substitute(item, mapping) for item in value)
    return value


@dataclass
class FloorResult:
    requests: int
    errors: dict[str, int]
    duration_s: float
    latencies_us: list[int]
    cpu_s: float


async def _noop_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_floor_pool(pool_size: int) -> asyncpg.Pool:
    options = db_connect.pool_options(get_database_settings())
    options.update(min_size=pool_size, max_size=pool_size, reset=_noop_reset)
    pool: asyncpg.Pool = await asyncpg.create_pool(**options)
    return pool


async def run_floor(
    pool: asyncpg.Pool,
    template: list[Call],
    base: dict[str, Any],
    variants: Iterator[dict[str, Any]],
    concurrency: int,
    duration_s: float,
) -> FloorResult:
    """`concurrency` tasks issue the template's queries back to back for `duration_s`."""
    import resource

    latencies: list[int] = []
    errors: dict[str, int] = {}
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker() -> None:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            variant = next(variants)
            mapping = [(base[key], variant[key]) for key in variant]
            try:
                async with pool.acquire() as conn:
                    if time.perf_counter() >= deadline:
                        return  # waited past the end for a connection: not started, not counted
                    for method, sql, args in template:
                        await getattr(conn, method)(sql, *substitute(args, mapping))
            except Exception as exc:  # counted, like an HTTP error status
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(int((time.perf_counter() - now) * 1_000_000))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return FloorResult(len(latencies), errors, elapsed, latencies, cpu)
