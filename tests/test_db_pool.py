"""The per-worker pool (shared.db), in-process against the test database: created once, reused,
recreated after closing, and bounded waits that become the contract's 503."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from shared import db, db_connect, db_errors
from shared.errors import DatabaseUnavailable, ValidationFailed
from shared.settings import clear_settings_cache


@pytest.fixture
async def use_database(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., None]]:
    """Point shared.db at the test database (plus any DB_* overrides); no pool before or after."""

    def configure(url: str = database_url, **settings: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("DB_SSL", "disable")
        monkeypatch.delenv("DATABASE_AUTH", raising=False)
        monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        clear_settings_cache()

    await db.close_pool()
    configure()
    yield configure
    await db.close_pool()
    monkeypatch.undo()
    clear_settings_cache()


@pytest.fixture
def create_pool_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every call of asyncpg.create_pool (still creating the real pool)."""
    calls: list[dict[str, Any]] = []
    real_create_pool = asyncpg.create_pool

    def counting_create_pool(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_create_pool(*args, **kwargs)

    monkeypatch.setattr(asyncpg, "create_pool", counting_create_pool)
    return calls


async def _backend_pid() -> int:
    """Run a query on a pooled connection; return the id of the server session that connection holds.

    The id comes from the connection's startup (BackendKeyData), not from `pg_backend_pid()`: behind PgBouncer
    in transaction mode each query may run on another server connection, but the client connection, which is
    what the pool reuses, keeps its id.
    """
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        return conn.get_server_pid()


async def test_fifty_concurrent_first_calls_create_one_pool(
    use_database: Callable[..., None],
    create_pool_calls: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # min_size 1: creating the pool does real I/O, so unguarded concurrent callers would all create one.
    use_database(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4")
    caplog.set_level(logging.INFO, logger="shared.db")
    pools = await asyncio.gather(*(db.get_pool() for _ in range(50)))
    assert len(create_pool_calls) == 1
    assert all(pool is pools[0] for pool in pools)
    assert [r.message for r in caplog.records].count("database pool created") == 1


async def test_fifty_concurrent_first_requests_share_one_small_pool(
    use_database: Callable[..., None], create_pool_calls: list[dict[str, Any]]
) -> None:
    use_database(DB_POOL_MAX_SIZE="4")
    pids = await asyncio.gather(*(_backend_pid() for _ in range(50)))
    assert len(create_pool_calls) == 1
    assert 1 <= len(set(pids)) <= 4


async def test_pool_is_created_with_the_configured_bounds_and_timeouts(
    use_database: Callable[..., None], create_pool_calls: list[dict[str, Any]]
) -> None:
    use_database(DB_POOL_MAX_SIZE="3", DB_COMMAND_TIMEOUT_S="7", DB_ACQUIRE_TIMEOUT_S="2")
    await _backend_pid()
    options = create_pool_calls[0]
    assert (options["min_size"], options["max_size"]) == (0, 3)
    assert options["command_timeout"] == 7.0 and options["timeout"] == 2.0
    assert options["ssl"] is False


async def test_the_pool_is_reused_across_invocations(
    use_database: Callable[..., None], create_pool_calls: list[dict[str, Any]]
) -> None:
    first = await db.get_pool()
    first_pid = await _backend_pid()
    for _ in range(5):
        assert await db.get_pool() is first
        # One invocation at a time: the same server connection serves each of them.
        assert await _backend_pid() == first_pid
    assert len(create_pool_calls) == 1


async def test_closing_then_using_again_creates_a_new_working_pool(
    use_database: Callable[..., None], create_pool_calls: list[dict[str, Any]]
) -> None:
    old = await db.get_pool()
    await _backend_pid()
    await db.close_pool()
    assert old.is_closing()
    new = await db.get_pool()
    assert new is not old
    assert await _backend_pid() != 0
    assert len(create_pool_calls) == 2
    await db.close_pool()
    await db.close_pool()  # closing twice is harmless


async def test_an_exhausted_pool_answers_database_unavailable_after_the_acquire_timeout(
    use_database: Callable[..., None],
) -> None:
    use_database(DB_POOL_MAX_SIZE="1", DB_ACQUIRE_TIMEOUT_S="0.5")
    async with db.connection() as held:
        assert await held.fetchval("SELECT 1") == 1
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as raised:
            async with db.connection():
                pass
        waited = time.monotonic() - started
    assert 0.4 <= waited < 3.0
    assert raised.value.status == 503
    assert raised.value.body()["error_code"] == "DATABASE_UNAVAILABLE"
    assert raised.value.headers["Retry-After"]
    # Released again: the next request gets the connection.
    assert await _backend_pid() != 0


async def test_an_unreachable_server_is_database_unavailable_and_the_pool_recovers(
    use_database: Callable[..., None], database_url: str, unused_tcp_port: int
) -> None:
    use_database(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/postgres", DB_ACQUIRE_TIMEOUT_S="2")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await _backend_pid()
    assert time.monotonic() - started < 3.0
    await db.close_pool()
    use_database(database_url)
    assert await _backend_pid() != 0


async def test_a_query_over_the_command_timeout_is_database_unavailable(use_database: Callable[..., None]) -> None:
    use_database(DB_COMMAND_TIMEOUT_S="0.3")
    with pytest.raises(TimeoutError) as raised:
        async with db.connection() as conn:
            await conn.execute("SELECT pg_sleep(5)")
    assert isinstance(db_errors.as_api_error(raised.value), DatabaseUnavailable)


async def test_text_postgresql_cannot_store_is_a_validation_error_not_invalid_json(
    use_database: Callable[..., None],
) -> None:
    # The models refuse NUL naming the field; this mapping is the last resort, where the value may have come
    # from a query parameter as well as from the body: a neutral 422, never INVALID_JSON.
    with pytest.raises(asyncpg.PostgresError) as raised:
        async with db.connection() as conn:
            await conn.fetchval("SELECT $1::text", "nul\x00inside")
    mapped = db_errors.as_api_error(raised.value)
    assert isinstance(mapped, ValidationFailed)
    assert mapped.body() == {
        "detail": "A text value contains a NUL character, which cannot be stored",
        "error_code": "VALIDATION_ERROR",
    }


async def test_a_bug_in_sql_is_not_mapped_to_a_client_or_availability_error(
    use_database: Callable[..., None],
) -> None:
    with pytest.raises(asyncpg.PostgresError) as raised:
        async with db.connection() as conn:
            await conn.fetchval("SELECT no_such_column FROM users")
    assert db_errors.as_api_error(raised.value) is None


async def test_jsonb_comes_back_decoded(use_database: Callable[..., None]) -> None:
    async with db.transaction() as conn:
        value = await conn.fetchval("""SELECT '{"tools": [1, 2]}'::jsonb""")
    assert value == {"tools": [1, 2]}


async def test_waiting_requests_get_a_connection_in_the_order_they_asked(
    use_database: Callable[..., None],
) -> None:
    # 30 clients share 2 connections and come back at random moments, like requests arriving from the network.
    # First come, first served means nobody is passed by more than the 29 others while waiting; asyncpg's own
    # queue lets newcomers take a connection handed back to a waiter, who then waits again (seen: 70).
    # Both connections are open before anyone asks: opening one lazily takes a client out of the line for as
    # long as the connect takes, while the other connection keeps serving (seen on a loaded machine: passed 37
    # times), which measures connection set-up, not the order of service.
    use_database(DB_POOL_MIN_SIZE="2", DB_POOL_MAX_SIZE="2")
    await db.get_pool()
    clients, rounds = 30, 20
    pauses = random.Random(6)
    grants: list[int] = []
    passed_by: list[int] = []

    async def client(number: int) -> None:
        for _ in range(rounds):
            asked_at = len(grants)
            async with db.connection() as conn:
                passed_by.append(len(grants) - asked_at)
                grants.append(number)
                assert await conn.fetchval("SELECT 1") == 1
            await asyncio.sleep(pauses.random() * 0.002)

    await asyncio.gather(*(client(number) for number in range(clients)))
    assert len(grants) == clients * rounds
    assert max(passed_by) <= clients - 1


async def test_a_waiter_that_gives_up_leaves_the_line_and_the_next_one_is_served(
    use_database: Callable[..., None],
) -> None:
    use_database(DB_POOL_MAX_SIZE="1")
    served: list[str] = []

    async def request(name: str) -> None:
        async with db.connection() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            served.append(name)

    async with db.connection():
        quitter = asyncio.create_task(request("quitter"))
        patient = asyncio.create_task(request("patient"))
        await asyncio.sleep(0.05)
        quitter.cancel()
        await asyncio.sleep(0)
    await patient
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert served == ["patient"]
    # The quitter's place was not kept: two more requests in a row get the one connection.
    await request("after")
    await request("after")
    assert served == ["patient", "after", "after"]


async def test_expired_connections_whose_socket_broke_are_replaced_without_an_error_in_the_background(
    use_database: Callable[..., None],
) -> None:
    # After a connection failure the pool expires its idle connections; the next acquire closes such a one in
    # a background task nobody awaits. When that close fails (the server is gone: broken pipe), asyncpg's
    # plain Connection let the task end with the error, which asyncio logs as an ERROR with a traceback.
    use_database(DB_POOL_MAX_SIZE="1")
    loop = asyncio.get_running_loop()
    background_errors: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: background_errors.append(context))
    closed_without_server = LogRecorded("database connection closed without the server")
    connection_logger = logging.getLogger(db_connect.RegistryConnection.__module__)
    connection_logger.addHandler(closed_without_server)
    previous_level = connection_logger.level
    connection_logger.setLevel(logging.INFO)
    try:
        async with db.connection() as conn:
            old_pid = conn.get_server_pid()
            # The socket under the idle connection breaks before asyncpg notices (writes now fail: EPIPE).
            sock = conn._transport.get_extra_info("socket")
        sock.shutdown(socket.SHUT_WR)
        await (await db.get_pool()).expire_connections()  # what db.connection() does after a failure
        assert await _backend_pid() != old_pid
        # Sentinel: the background close has run into the broken socket and finished.
        async with asyncio.timeout(10):
            await closed_without_server.seen.wait()
        await asyncio.sleep(0)  # the task's own completion runs after its last line
        gc.collect()  # an unretrieved task error is reported when the task is collected
    finally:
        connection_logger.removeHandler(closed_without_server)
        connection_logger.setLevel(previous_level)
        loop.set_exception_handler(previous_handler)
    assert background_errors == []


class LogRecorded(logging.Handler):
    """Sets `seen` when a record whose message starts with `prefix` is logged."""

    def __init__(self, prefix: str) -> None:
        super().__init__(level=logging.DEBUG)
        self.prefix = prefix
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.seen.set()


async def test_closing_a_connection_whose_socket_broke_completes_and_leaves_it_closed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, connection_class=db_connect.RegistryConnection)
    conn._transport.get_extra_info("socket").shutdown(socket.SHUT_WR)
    await conn.close()
    assert conn.is_closed()


# ---------------------------------------------------------------- the gate: asyncio.Semaphore's guarantees
# The pool's gate is a plain asyncio.Semaphore (one permit per connection). A hand-written first-come-first-
# served gate was replaced by it once these showed that Python 3.11's semaphore already hands a released
# permit straight to the oldest waiter and loses no permit when a waiter is cancelled at any moment.


async def test_a_released_permit_goes_to_the_oldest_waiter_not_to_a_newcomer() -> None:
    gate = asyncio.Semaphore(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        order.append(name)
        gate.release()

    first = asyncio.create_task(take("first"))
    second = asyncio.create_task(take("second"))
    await asyncio.sleep(0)  # both are in line
    gate.release()
    newcomer = asyncio.create_task(take("newcomer"))  # arrives before the woken waiter runs
    await asyncio.gather(first, second, newcomer)
    assert order == ["first", "second", "newcomer"]


async def test_a_waiter_cancelled_just_before_a_release_leaves_the_line_and_loses_no_permit() -> None:
    # A timeout cancels the waiter's future at once, but its task runs its cleanup only later; a release in
    # between must skip it and keep the permit (seen in CI with an earlier gate: a 500 instead of a 503).
    gate = asyncio.Semaphore(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)  # it is in line
    waiter.cancel()
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(gate.acquire(), 0.5)  # the released permit is still there


async def test_a_waiter_cancelled_just_after_it_was_granted_hands_the_permit_on() -> None:
    gate = asyncio.Semaphore(1)
    await gate.acquire()
    granted_then_cancelled = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    next_in_line = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # the permit is the first waiter's now…
    granted_then_cancelled.cancel()  # …but it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await granted_then_cancelled
    await asyncio.wait_for(next_in_line, 0.5)
