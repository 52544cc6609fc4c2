"""The audit log: who changed which registration, how, and when. Written by `shared.registrations` in the
same statement or transaction as each change; read here (admins only)."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared import db
from shared.http import json_response
from shared.models import AuditEntry, AuditLogList, AuditLogQuery
from shared.sql import Conditions

AUDIT_COLUMNS = """
    l.log_id, l.registration_id, l.user_id, u.email AS user_email, u.display_name AS user_display_name,
    l.action, l.previous_status, l.new_status, l.metadata, l."timestamp"
"""


def list_audit_sql(query: AuditLogQuery) -> tuple[str, list[Any]]:
    """The statement (and its arguments) that reads one page, newest first, with the filtered total."""
    conditions = Conditions()
    conditions.add_if_set("l.registration_id = $?", query.registration_id)
    conditions.add_if_set("l.user_id = $?", query.user_id)
    conditions.add_if_set("l.action = $?", query.action)
    conditions.add_if_set('l."timestamp" >= $?', query.from_)
    conditions.add_if_set('l."timestamp" <= $?', query.to)
    where = conditions.where()
    args = [*conditions.args, query.limit, query.offset]
    sql = f"""
WITH total AS (SELECT count(*) AS n FROM audit_log l {where}),
page AS (
    SELECT l.* FROM audit_log l {where}
     ORDER BY l."timestamp" DESC, l.log_id DESC
     LIMIT ${len(args) - 1} OFFSET ${len(args)}
)
SELECT (SELECT n FROM total) AS total, p.*
  FROM (SELECT 1) AS one
  LEFT JOIN (SELECT {AUDIT_COLUMNS} FROM page l JOIN users u ON u.user_id = l.user_id) p ON true
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
