"""Bulk-load times: `uv run python -m bench.load --sizes 25k,100k`.

Loads the seeder's registrations and audit entries (about 1.85 per registration) through the production
bulk-load path (devtools.bulk_load: one transaction, counter triggers on) into a fresh migrated database, in two
modes per size:
- `empty`: the database has no registration, so the secondary indexes are built after the COPY;
- `live`: the database already holds 1 000 registrations, so every index (the trigram one included) is
  maintained row by row, as for an import into a database in use.
Afterwards every counter is checked against count(*). Prints one line per load and writes
bench/results/load-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import seed as seeding
from devtools.bulk_load import bulk_load
from shared.migrate import apply_migrations

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIVE_BASE_ROWS = 1_000

BASE_ROWS_SQL = """
INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, server_name, submitter_id)
SELECT 'https://base-' || n || '.example.org/mcp', 'Base server ' || n, 'base@example.org', 'org.example.base/s-' || n,
       (SELECT user_id FROM users ORDER BY user_id LIMIT 1)
  FROM generate_series(1, $1) AS n
"""
# Each counter against the rows it counts: 0 when all agree.
MISMATCHES_SQL = """
SELECT (SELECT count(*) FROM (
            SELECT status, sum(row_count) AS n FROM registration_counts GROUP BY status
            EXCEPT SELECT status, count(*) FROM registrations GROUP BY status) a)
     + (SELECT count(*) FROM (
            SELECT action, sum(row_count) FROM audit_log_counts_by_action GROUP BY action
            EXCEPT SELECT action, count(*) FROM audit_log GROUP BY action) b)
     + (SELECT count(*) FROM (
            SELECT user_id, sum(row_count) FROM audit_log_counts_by_user GROUP BY user_id
            EXCEPT SELECT user_id, count(*) FROM audit_log GROUP BY user_id) c)
     + (SELECT count(*) FROM (
            SELECT day, sum(row_count) FROM audit_log_counts_by_day GROUP BY day
            EXCEPT SELECT ("timestamp" AT TIME ZONE 'UTC')::date, count(*) FROM audit_log GROUP BY 1) d)
"""


async def measure(admin_dsn: str, registrations: int, mode: str) -> dict[str, Any]:
    plan = seeding.SeedPlan(f"load_{mode}_{registrations}", registrations)
    await seeding.recreate_database(admin_dsn, plan)
    dsn = seeding.with_database(admin_dsn, plan.database)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        rng = random.Random(20251111)
        await bulk_load(conn, users=list(seeding.user_rows(plan, rng)))
        if mode == "live":
            await conn.execute(BASE_ROWS_SQL, LIVE_BASE_ROWS)
            await conn.execute("VACUUM (ANALYZE)")
        rows, audit = seeding.registration_and_audit_rows(plan, rng)
        loaded = await bulk_load(conn, registrations=rows, audit_entries=audit)
        mismatches = await conn.fetchval(MISMATCHES_SQL)
    finally:
        await conn.close()
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{plan.database}" WITH (FORCE)')
        finally:
            await admin.close()
    return {
        "mode": mode, "registrations": loaded.registrations, "audit_entries": loaded.audit_entries,
        "seconds": loaded.seconds, "rebuilt_indexes": loaded.rebuilt_indexes, "counter_mismatches": mismatches,
    }


async def main_async(sizes: list[str], modes: list[str], admin_dsn: str) -> list[dict[str, Any]]:
    results = []
    for mode in modes:
        for size in sizes:
            result = await measure(admin_dsn, seeding.plan_for(size).registrations, mode)
            results.append(result)
            print(f"{mode:5} {result['registrations']:>9} registrations + {result['audit_entries']:>9} audit entries: "
                  f"{result['seconds']:8.1f} s  counters {'exact' if result['counter_mismatches'] == 0 else 'WRONG'}",
                  flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25000,100000", help="comma-separated sizes (25000, 100k, 1m)")
    parser.add_argument("--modes", default="empty,live", help="empty, live or both")
    parser.add_argument("--server-dsn", default=seeding.DEFAULT_SERVER_DSN)
    args = parser.parse_args(argv)
    started = time.strftime("%Y%m%d-%H%M%S")
    results = asyncio.run(main_async(args.sizes.split(","), args.modes.split(","), args.server_dsn))
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"load-{started}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
