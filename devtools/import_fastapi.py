"""Move in from the FastAPI version of this service: `python -m devtools.import_fastapi --from-dsn postgresql://…`.

Reads that version's `users`, `registrations` and `audit_log` in one read-only snapshot (the source session is
read-only: nothing is ever written there) and loads them into this service's database (DATABASE_URL, or
--database-url) through the bulk-load path (devtools.bulk_load): one transaction, so a failure imports nothing.
A one-off operator tool run from a machine that reaches both databases, like `python -m shared.migrate`; it
lives in devtools/, which is never deployed.

- Ids, timestamps, statuses, approvers and the whole audit history are kept: the entries of deleted
  registrations too, a Deleted entry with its metadata, and metadata stored as a JSON string inside the jsonb
  column is decoded.
- Each registration gets the canonical form of its URL (shared.urls), a server name derived from its name
  (as for a new registration; a taken name gets a piece of the registration id, as in sql/0002), and the
  default version and transport. Two registrations whose URLs become one are both reported and the later one
  is not imported (nor its audit entries): nothing is merged silently. So is a row this schema refuses.
- Users keep their user_id. The old version keyed them by the token's `sub`; this one keys them by (tenant,
  `oid`), so an imported user has no `oid` until the first sign-in whose token carries this tenant and that
  `sub` claims the row (sql/0010, shared/users.py). Never matched by e-mail.
- Idempotent: what an earlier run imported (same id) is skipped, and a run that imports nothing says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from devtools.bulk_load import bulk_load
from shared.migrate import connect
from shared.registrations import derived_server_name
from shared.settings import DatabaseSettings, RegistrySettings, SettingsError
from shared.urls import canonical_endpoint_url

DEFAULT_VERSION = "1.0.0"
DEFAULT_TRANSPORT = "streamable-http"
STATUSES = ("Pending", "Approved", "Rejected")
ACTIONS = ("Created", "Approved", "Rejected", "Updated", "Deleted")
# Arbitrary constant: two importers into one database never run at once.
IMPORT_LOCK_KEY = 0x4D43_5052_6567_0017
PROGRESS_EVERY = 100_000

SOURCE_USERS_SQL = """
SELECT user_id, entra_id, email, display_name, is_admin, created_at, updated_at
  FROM users ORDER BY created_at, user_id
"""
SOURCE_REGISTRATIONS_SQL = """
SELECT registration_id, endpoint_url, endpoint_name, description, owner_contact, available_tools::text AS available_tools,
       status, submitter_id, approver_id, submitted_at, approved_at, created_at, updated_at
  FROM registrations ORDER BY created_at, registration_id
"""
SOURCE_AUDIT_SQL = """
SELECT log_id, registration_id, user_id, action, previous_status, new_status, metadata::text AS metadata, "timestamp"
  FROM audit_log ORDER BY "timestamp", log_id
"""

Log = Callable[[str], None]


@dataclass
class TableSummary:
    imported: int = 0
    skipped: int = 0
    reported: list[str] = field(default_factory=list)

    def line(self, table: str) -> str:
        return f"{table}: imported {self.imported}, skipped {self.skipped} (imported earlier), reported {len(self.reported)}"


@dataclass
class ImportSummary:
    users: TableSummary = field(default_factory=TableSummary)
    registrations: TableSummary = field(default_factory=TableSummary)
    audit_log: TableSummary = field(default_factory=TableSummary)

    def tables(self) -> dict[str, TableSummary]:
        return {"users": self.users, "registrations": self.registrations, "audit_log": self.audit_log}

    @property
    def imported(self) -> int:
        return sum(table.imported for table in self.tables().values())


@dataclass(frozen=True)
class Source:
    users: list[asyncpg.Record]
    registrations: list[asyncpg.Record]
    audit: list[asyncpg.Record]


def canonical_url(value: str) -> str:
    """The one spelling of an endpoint URL this service stores (ValueError when it accepts none)."""
    return canonical_endpoint_url(value)


def decoded_metadata(text: str | None) -> dict[str, Any]:
    """The metadata object; the FastAPI version sometimes stored a JSON string holding the object."""
    value: Any = json.loads(text) if text is not None else {}
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"text": value}
    return value if isinstance(value, dict) else {"value": value}


async def read_source(source: asyncpg.Connection, log: Log) -> Source:
    """All three tables in one repeatable-read snapshot."""
    async with source.transaction(isolation="repeatable_read", readonly=True):
        tables = []
        for name, sql in (("users", SOURCE_USERS_SQL), ("registrations", SOURCE_REGISTRATIONS_SQL),
                          ("audit entries", SOURCE_AUDIT_SQL)):
            rows: list[asyncpg.Record] = []
            async for row in source.cursor(sql, prefetch=10_000):
                rows.append(row)
                if len(rows) % PROGRESS_EVERY == 0:
                    log(f"import: read {len(rows)} {name}")
            log(f"import: read {len(rows)} {name} from the source")
            tables.append(rows)
    return Source(*tables)


def _registration_problem(row: asyncpg.Record) -> str | None:
    """Why this schema would refuse the row, if it would (its checks in sql/0001)."""
    if row["status"] not in STATUSES:
        return f"status {row['status']!r} is not one of {', '.join(STATUSES)}"
    if (row["status"] == "Pending") != (row["approver_id"] is None):
        return f"status {row['status']} does not agree with approver_id {row['approver_id']}"
    if not 3 <= len(row["endpoint_name"] or "") <= 200:
        return "endpoint_name must be 3-200 characters"
    if row["description"] is not None and len(row["description"]) > 1000:
        return "description must be at most 1000 characters"
    if not 1 <= len(row["owner_contact"] or "") <= 320:
        return "owner_contact must be 1-320 characters"
    tools = json.loads(row["available_tools"]) if row["available_tools"] is not None else []
    if not isinstance(tools, list):
        return "available_tools is not a JSON array"
    return None


async def plan_import(
    target: asyncpg.Connection, source: Source, *, tenant_id: UUID, namespace: str
) -> tuple[ImportSummary, list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What to load (rows in devtools.bulk_load's column order), what was imported earlier, what is reported."""
    summary = ImportSummary()

    # ---- users
    known_users = {
        row["user_id"] for row in await target.fetch(
            "SELECT user_id FROM users WHERE user_id = ANY($1::uuid[])", [row["user_id"] for row in source.users]
        )
    }
    subs_taken = {
        row["legacy_sub"]: row["user_id"] for row in await target.fetch(
            "SELECT legacy_sub, user_id FROM users WHERE tenant_id = $1 AND legacy_sub = ANY($2::text[])",
            tenant_id, [row["entra_id"] for row in source.users],
        )
    }
    users = []
    for row in source.users:
        if row["user_id"] in known_users:
            summary.users.skipped += 1
        elif row["entra_id"] in subs_taken:
            summary.users.reported.append(
                f"user {row['user_id']}: sub {row['entra_id']!r} already belongs to user {subs_taken[row['entra_id']]}"
            )
        else:
            subs_taken[row["entra_id"]] = row["user_id"]
            known_users.add(row["user_id"])
            users.append((
                row["user_id"], tenant_id, None, row["entra_id"], row["email"] or "", row["display_name"] or "",
                row["is_admin"], row["created_at"], row["updated_at"],
            ))
            summary.users.imported += 1

    # ---- registrations
    existing = {
        row["registration_id"] for row in await target.fetch(
            "SELECT registration_id FROM registrations WHERE registration_id = ANY($1::uuid[])",
            [row["registration_id"] for row in source.registrations],
        )
    }
    canonical: dict[UUID, str] = {}
    for row in source.registrations:
        try:
            canonical[row["registration_id"]] = canonical_url(row["endpoint_url"])
        except ValueError as exc:
            summary.registrations.reported.append(
                f"registration {row['registration_id']}: endpoint_url {row['endpoint_url']!r} {exc}; not imported"
            )
    url_holders = {
        row["endpoint_url"]: row["registration_id"] for row in await target.fetch(
            "SELECT endpoint_url, registration_id FROM registrations WHERE endpoint_url = ANY($1::text[])",
            list(canonical.values()),
        )
    }
    slugs = {derived_server_name(row["endpoint_name"] or "", namespace) for row in source.registrations}
    # Server names are unique ignoring case (sql/0008); derived ones are lower case.
    names_taken = {
        row["name"] for row in await target.fetch(
            "SELECT lower(server_name) AS name FROM registrations"
            " WHERE lower(server_name) = ANY($1::text[]) OR lower(server_name) LIKE ANY($2::text[])",
            list(slugs), [f"{slug}-%" for slug in slugs],
        )
    }
    users_present = known_users | {
        row["user_id"] for row in await target.fetch(
            "SELECT user_id FROM users WHERE user_id = ANY($1::uuid[])",
            list({row["submitter_id"] for row in source.registrations} | {row["user_id"] for row in source.audit}),
        )
    }
    not_imported: set[UUID] = set()
    registrations = []
    for row in source.registrations:
        registration_id = row["registration_id"]
        if registration_id in existing:
            summary.registrations.skipped += 1
            continue
        url = canonical.get(registration_id)
        problem = _registration_problem(row)
        if url is None:
            problem = problem or "its URL is refused"
        elif url_holders.get(url, registration_id) != registration_id:
            problem = (
                f"endpoint_url {row['endpoint_url']!r} is {url!r} once canonical, the URL of registration "
                f"{url_holders[url]} (imported first: created earlier)"
            )
        elif row["submitter_id"] not in users_present or (row["approver_id"] not in (None, *users_present)):
            problem = "its submitter or approver is not a user"
        if problem is not None:
            not_imported.add(registration_id)
            if url is not None:  # the refused URL was reported above
                summary.registrations.reported.append(f"registration {registration_id}: {problem}; not imported")
            continue
        assert url is not None
        url_holders[url] = registration_id
        server_name = derived_server_name(row["endpoint_name"], namespace)
        if server_name.lower() in names_taken:
            server_name = derived_server_name(row["endpoint_name"], namespace, f"-{registration_id.hex[:8]}")
        names_taken.add(server_name.lower())
        decided = row["status"] != "Pending"
        registrations.append((
            registration_id, url, row["endpoint_name"], row["description"], row["owner_contact"],
            row["available_tools"] or "[]", row["status"], row["submitter_id"], row["approver_id"],
            row["submitted_at"], (row["approved_at"] or row["updated_at"]) if decided else None,
            row["created_at"], row["updated_at"], server_name, DEFAULT_VERSION, DEFAULT_TRANSPORT,
        ))
        summary.registrations.imported += 1

    # ---- audit log
    logged = {
        row["log_id"] for row in await target.fetch(
            "SELECT log_id FROM audit_log WHERE log_id = ANY($1::uuid[])", [row["log_id"] for row in source.audit]
        )
    }
    audit = []
    for row in source.audit:
        problem = None
        if row["log_id"] in logged:
            summary.audit_log.skipped += 1
            continue
        if row["registration_id"] in not_imported:
            problem = f"its registration {row['registration_id']} was not imported"
        elif row["action"] not in ACTIONS:
            problem = f"action {row['action']!r} is not one of {', '.join(ACTIONS)}"
        elif row["previous_status"] not in (None, *STATUSES) or row["new_status"] not in (None, *STATUSES):
            problem = f"statuses {row['previous_status']!r} → {row['new_status']!r} are not registration statuses"
        elif row["user_id"] not in users_present:
            problem = f"user {row['user_id']} is not a user"
        if problem is not None:
            summary.audit_log.reported.append(f"audit entry {row['log_id']}: {problem}; not imported")
            continue
        try:
            metadata = decoded_metadata(row["metadata"])
        except ValueError:
            summary.audit_log.reported.append(f"audit entry {row['log_id']}: metadata is not JSON; not imported")
            continue
        audit.append((
            row["log_id"], row["registration_id"], row["user_id"], row["action"], row["previous_status"],
            row["new_status"], json.dumps(metadata), row["timestamp"],
        ))
        summary.audit_log.imported += 1
    return summary, users, registrations, audit


async def import_database(
    source: asyncpg.Connection, target: asyncpg.Connection, *, tenant_id: UUID, namespace: str, log: Log = print
) -> ImportSummary:
    started = time.perf_counter()
    data = await read_source(source, log)
    async with target.transaction():
        await target.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK_KEY)
        summary, users, registrations, audit = await plan_import(target, data, tenant_id=tenant_id, namespace=namespace)
        if summary.imported:
            await bulk_load(target, users=users, registrations=registrations, audit_entries=audit, log=log)
    if summary.imported:
        # Fresh statistics, and the new rows marked all-visible, so list pages stay index-only scans (sql/0005).
        await target.execute("VACUUM (ANALYZE) users, registrations, audit_log")
    log(f"import: done in {time.perf_counter() - started:.1f}s")
    return summary


def print_summary(summary: ImportSummary, log: Log = print) -> None:
    for table, counts in summary.tables().items():
        log(counts.line(table))
        for message in counts.reported:
            log(f"  reported: {message}")
    if not summary.imported:
        log("nothing imported: every row was imported by an earlier run or is reported above")


async def run(from_dsn: str, settings: DatabaseSettings, tenant_id: UUID, namespace: str) -> ImportSummary:
    # A read-only session: the source is never written, whatever this code did.
    source = await asyncpg.connect(from_dsn, server_settings={"default_transaction_read_only": "on"})
    try:
        target = await connect(settings)
        try:
            return await import_database(source, target, tenant_id=tenant_id, namespace=namespace)
        finally:
            await target.close()
    finally:
        await source.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.import_fastapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-dsn", required=True, help="PostgreSQL DSN of the FastAPI version's database (read only)")
    parser.add_argument("--database-url", help="this service's database (default: the DATABASE_URL setting)")
    parser.add_argument("--tenant-id", help="Entra tenant of the imported users (default: ENTRA_TENANT_ID)")
    parser.add_argument("--namespace", help="namespace of derived server names (default: MCP_SERVER_NAMESPACE)")
    args = parser.parse_args(argv)
    environ = {**os.environ, **({"DATABASE_URL": args.database_url} if args.database_url else {})}
    try:
        settings = DatabaseSettings.from_env(environ)
        tenant = args.tenant_id or environ.get("ENTRA_TENANT_ID", "").strip()
        if not tenant:
            raise SettingsError("the tenant of the imported users is needed: --tenant-id or ENTRA_TENANT_ID")
        tenant_id = UUID(tenant)
        namespace = args.namespace or RegistrySettings.from_env(environ).server_namespace
    except (SettingsError, ValueError) as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(run(args.from_dsn, settings, tenant_id, namespace))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Nothing was imported: the load is one transaction.
        print(f"import failed, nothing imported: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
