"""How the app's connections are opened: pool options, TLS, the managed identity's token as the password,
startup parameters, and the connection class with its setup and reset."""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any, Literal

import asyncpg

from shared.db_entra import PasswordProvider, entra_token_provider
from shared.settings import DatabaseSettings

logger = logging.getLogger(__name__)


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
