"""The database-kept counters (sql/0009) against a count(*) of the rows they count."""

from __future__ import annotations

import asyncpg

# (counter table, its key column, the same key computed from an audit_log row `l`)
AUDIT_COUNTERS = (
    ("audit_log_counts_by_action", "action", "l.action"),
    ("audit_log_counts_by_user", "user_id", "l.user_id"),
    ("audit_log_counts_by_day", "day", "(l.\"timestamp\" AT TIME ZONE 'UTC')::date"),
)


async def counter_mismatches(conn: asyncpg.Connection) -> dict[str, list[tuple[object, int, int]]]:
    """Every key whose counter (the sum of its slots) differs from the count of its rows, per counter table."""
    mismatches: dict[str, list[tuple[object, int, int]]] = {}
    queries = {
        "registration_counts": """
            SELECT key, coalesce(counted, 0) AS counted, coalesce(actual, 0) AS actual
              FROM (SELECT status AS key, sum(row_count) AS counted FROM registration_counts GROUP BY status) c
              FULL JOIN (SELECT status AS key, count(*) AS actual FROM registrations GROUP BY status) a USING (key)
             WHERE coalesce(counted, 0) <> coalesce(actual, 0)
        """,
    }
    for table, key, expression in AUDIT_COUNTERS:
        queries[table] = f"""
            SELECT key, coalesce(counted, 0) AS counted, coalesce(actual, 0) AS actual
              FROM (SELECT {key} AS key, sum(row_count) AS counted FROM {table} GROUP BY {key}) c
              FULL JOIN (SELECT {expression} AS key, count(*) AS actual FROM audit_log l GROUP BY 1) a USING (key)
             WHERE coalesce(counted, 0) <> coalesce(actual, 0)
        """
    for table, sql in queries.items():
        rows = await conn.fetch(sql)
        if rows:
            mismatches[table] = [(row["key"], int(row["counted"]), int(row["actual"])) for row in rows]
    return mismatches


async def generation(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(sum(generation), 0) FROM registration_changes"))
