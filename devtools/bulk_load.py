"""Bulk loads of users, registrations and their audit entries: COPY in one transaction, counters kept.

Used by the importer (`python -m devtools.import_fastapi`) and by the benchmark's seeder; in devtools/, never
deployed. Everything is one transaction: a failure leaves nothing half-loaded. The counter triggers stay
on: they run once per COPY statement over its transition table (sql/0009), so the status counts, the change
generation and the audit log's counters are exact afterwards at the cost of one aggregate per table. Foreign
keys and check constraints are checked as usual.

Into an empty database (no registration, no audit entry) the secondary indexes of both tables are dropped
first and built after the rows are in (a sorted build instead of an insert per row; both are transactional,
so a failure restores them). Into a database that has rows, the indexes stay and are maintained row by row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

USER_COLUMNS = (
    "user_id", "tenant_id", "entra_id", "legacy_sub", "email", "display_name", "is_admin", "created_at", "updated_at",
)
REGISTRATION_COLUMNS = (
    "registration_id", "endpoint_url", "endpoint_name", "description", "owner_contact", "available_tools",
    "status", "submitter_id", "approver_id", "submitted_at", "approved_at", "created_at", "updated_at",
    "server_name", "version", "transport",
)
AUDIT_COLUMNS = (
    "log_id", "registration_id", "user_id", "action", "previous_status", "new_status", "metadata", "timestamp",
)
# Rows between two progress lines.
PROGRESS_EVERY = 100_000

IS_EMPTY_SQL = "SELECT NOT EXISTS (SELECT 1 FROM registrations) AND NOT EXISTS (SELECT 1 FROM audit_log)"
# Indexes that are neither a constraint's nor unique (primary keys and unique indexes stay: they check the
# rows as they come).
SECONDARY_INDEXES_SQL = """
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
 WHERE x.indrelid = ANY ($1::regclass[])
   AND NOT x.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
 ORDER BY i.relname
"""

Log = Callable[[str], None]
Row = Sequence[Any]


@dataclass(frozen=True)
class LoadResult:
    users: int
    registrations: int
    audit_entries: int
    rebuilt_indexes: int
    seconds: float


class _Counted:
    """An iterable that counts what it yields and logs progress every PROGRESS_EVERY rows."""

    def __init__(self, rows: Iterable[Row], what: str, log: Log, started: float) -> None:
        self.rows, self.what, self.log, self.started = rows, what, log, started
        self.count = 0

    def __iter__(self) -> Iterator[Row]:
        for row in self.rows:
            self.count += 1
            if self.count % PROGRESS_EVERY == 0:
                self.log(f"load: {self.count} {self.what} ({time.perf_counter() - self.started:.1f}s)")
            yield row


def _quiet(_message: str) -> None:
    return None


async def bulk_load(
    conn: asyncpg.Connection,
    *,
    users: Iterable[Row] = (),
    registrations: Iterable[Row] = (),
    audit_entries: Iterable[Row] = (),
    log: Log = _quiet,
) -> LoadResult:
    """COPY the rows (in USER_COLUMNS, REGISTRATION_COLUMNS and AUDIT_COLUMNS order) in one transaction.

    `audit_entries` is read after `registrations` is exhausted, so it may be filled while they stream.
    """
    started = time.perf_counter()
    user_rows = _Counted(users, "users", log, started)
    registration_rows = _Counted(registrations, "registrations", log, started)
    audit_rows = _Counted(audit_entries, "audit entries", log, started)
    async with conn.transaction():
        rebuild: list[tuple[str, str]] = []
        if await conn.fetchval(IS_EMPTY_SQL):
            # Taken with the drop: nobody writes either table until the load commits.
            rebuild = [
                (row["name"], row["definition"])
                for row in await conn.fetch(SECONDARY_INDEXES_SQL, ["registrations", "audit_log"])
            ]
            for name, _definition in rebuild:
                await conn.execute(f'DROP INDEX "{name}"')
        await conn.copy_records_to_table("users", records=user_rows, columns=list(USER_COLUMNS))
        await conn.copy_records_to_table("registrations", records=registration_rows, columns=list(REGISTRATION_COLUMNS))
        log(f"load: {registration_rows.count} registrations copied ({time.perf_counter() - started:.1f}s)")
        await conn.copy_records_to_table("audit_log", records=audit_rows, columns=list(AUDIT_COLUMNS))
        log(f"load: {audit_rows.count} audit entries copied ({time.perf_counter() - started:.1f}s)")
        if rebuild:
            # Sorted in memory where it fits: the trigram index is by far the largest build (1M registrations: 62 s for all ten).
            await conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            for _name, definition in rebuild:
                await conn.execute(definition)
            log(f"load: {len(rebuild)} indexes built ({time.perf_counter() - started:.1f}s)")
    return LoadResult(
        users=user_rows.count,
        registrations=registration_rows.count,
        audit_entries=audit_rows.count,
        rebuilt_indexes=len(rebuild),
        seconds=round(time.perf_counter() - started, 2),
    )
