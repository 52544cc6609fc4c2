"""The audit log: who changed which registration, how, and when. Written by `shared.registrations` in the
same statement or transaction as each change; read here (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from shared import db
from shared.http import json_response
from shared.models import AuditEntry, AuditLogList, AuditLogQuery
from shared.sql import Conditions

# The author's name and e-mail are looked up per entry of the page (an index lookup each): a join would let a
# generic plan, which does not know the page's LIMIT and expects a tenth of the entries, hash the whole users
# table (34 ms with 50 000 users, measured at 1M registrations; 0.5 ms for the 50 lookups).
AUDIT_COLUMNS = """
    l.log_id, l.registration_id, l.user_id,
    (SELECT u.email FROM users u WHERE u.user_id = l.user_id) AS user_email,
    (SELECT u.display_name FROM users u WHERE u.user_id = l.user_id) AS user_display_name,
    l.action, l.previous_status, l.new_status, l.metadata, l."timestamp"
"""


# Totals come from counters the database keeps in the same transaction as every audit write (sql/0009): per
# action, per user and per UTC day, each a few striped slot rows to sum. A registration's entries are few and
# counted through their index. Other combinations of filters are counted through the index of one of them.
ALL_ENTRIES_TOTAL_SQL = "SELECT coalesce(sum(row_count), 0)::bigint FROM audit_log_counts_by_action"
ACTION_TOTAL_SQL = "SELECT coalesce(sum(row_count), 0)::bigint FROM audit_log_counts_by_action WHERE action = $?"
USER_TOTAL_SQL = "SELECT coalesce(sum(row_count), 0)::bigint FROM audit_log_counts_by_user WHERE user_id = $?"
ONE_DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)
# Nothing is later than this (the last representable moment), so a range ending there is unbounded.
LAST_MOMENT = datetime.max.replace(tzinfo=UTC)


def _utc_midnight(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def whole_days(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None] | None:
    """The UTC midnights [first, last) bounding the whole days inside the inclusive range [start, end] (None:
    unbounded on that side), or None when no whole day lies inside it."""
    first = None if start is None else _utc_midnight(start)
    if first is not None and start is not None and first < start:
        first += ONE_DAY
    # `end` is inclusive, so a day ending exactly one microsecond after it (`to=<date>` means 23:59:59.999999) is whole.
    last = None if end is None or end.astimezone(UTC) >= LAST_MOMENT else _utc_midnight(end + MICROSECOND)
    if first is not None and last is not None and first >= last:
        return None
    return first, last


def _time_range_total_sql(query: AuditLogQuery, args: list[Any]) -> str:
    """The total of a time range: its whole days from the day counters, the partial days at its edges from
    the timestamp index (at most two days of entries)."""

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    days = whole_days(query.from_, query.to)
    if days is None:
        assert query.from_ is not None and query.to is not None
        return f'SELECT count(*) FROM audit_log l WHERE l."timestamp" >= {param(query.from_)} AND l."timestamp" <= {param(query.to)}'
    first, last = days
    parts = []
    day_conditions = []
    if first is not None:
        day_conditions.append(f"day >= {param(first.date())}")
        if query.from_ is not None and query.from_ < first:
            parts.append(
                f'(SELECT count(*) FROM audit_log l WHERE l."timestamp" >= {param(query.from_)} '
                f'AND l."timestamp" < {param(first)})'
            )
    if last is not None:
        day_conditions.append(f"day < {param(last.date())}")
        assert query.to is not None
        parts.append(
            f'(SELECT count(*) FROM audit_log l WHERE l."timestamp" >= {param(last)} '
            f'AND l."timestamp" <= {param(query.to)})'
        )
    where = "WHERE " + " AND ".join(day_conditions) if day_conditions else ""
    parts.append(f"(SELECT coalesce(sum(row_count), 0) FROM audit_log_counts_by_day {where})")
    return "SELECT (" + " + ".join(parts) + ")::bigint"


def list_audit_sql(query: AuditLogQuery) -> tuple[str, list[Any]]:
    """The statement (and its arguments) that reads one page, newest first, with the filtered total."""
    conditions = Conditions()
    # The placeholder of each filter that is set, by filter.
    placeholders = {
        name: conditions.add(fragment, value)
        for name, fragment, value in (
            ("registration_id", "l.registration_id = $?", query.registration_id),
            ("user_id", "l.user_id = $?", query.user_id),
            ("action", "l.action = $?", query.action),
            ("from", 'l."timestamp" >= $?', query.from_),
            ("to", 'l."timestamp" <= $?', query.to),
        )
        if value is not None
    }
    where = conditions.where()
    args = list(conditions.args)
    filters = set(placeholders)
    if not filters:
        total_sql = ALL_ENTRIES_TOTAL_SQL
    elif filters == {"action"}:
        total_sql = ACTION_TOTAL_SQL.replace("$?", placeholders["action"])
    elif filters == {"user_id"}:
        total_sql = USER_TOTAL_SQL.replace("$?", placeholders["user_id"])
    elif filters <= {"from", "to"}:
        total_sql = _time_range_total_sql(query, args)
    else:
        total_sql = f"SELECT count(*) FROM audit_log l {where}"
    args += [query.limit, query.offset]
    # Like the registrations list: the page's ids come from the filter's (timestamp, log_id) index alone, and
    # only those entries are read from the table, so a deep offset skips index entries, not table rows.
    sql = f"""
WITH page AS (
    SELECT l.* FROM (
        SELECT l.log_id FROM audit_log l {where}
         ORDER BY l."timestamp" DESC, l.log_id DESC
         LIMIT ${len(args) - 1} OFFSET ${len(args)}
    ) ids
    JOIN audit_log l ON l.log_id = ids.log_id
)
SELECT ({total_sql}) AS total, p.*
  FROM (SELECT 1) AS one
  LEFT JOIN (SELECT {AUDIT_COLUMNS} FROM page l) p ON true
 ORDER BY p."timestamp" DESC, p.log_id DESC
"""
    return sql, args


async def list_audit_entries(query: AuditLogQuery) -> AuditLogList:
    """One page, newest first, and the total of the filtered set, in one round trip."""
    sql, args = list_audit_sql(query)
    async with db.connection() as conn:
        rows = await conn.fetch(sql, *args)
    total = int(rows[0]["total"]) if rows else 0
    results = [AuditEntry.model_validate(dict(row)) for row in rows if row["log_id"] is not None]
    return AuditLogList(total=total, limit=query.limit, offset=query.offset, results=results)


async def list_audit_logs(query: AuditLogQuery) -> func.HttpResponse:
    return json_response(await list_audit_entries(query))
