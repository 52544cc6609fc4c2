"""Look-alike names and reviewed edits.

- Server names are unique ignoring case (`…/WEATHER` and `…/weather` are one name to a person reading a
  policy): the unique constraint on `server_name` becomes a unique index on `lower(server_name)`, under the
  same name, so the application's conflict handling is unchanged. Rows that collide stop the step, named,
  and nothing changes (the runner rolls the whole run back).
- `edited_at` / `edited_by`: when a registration's fields were last changed by an edit, and by whom. An
  approval without If-Match is refused shortly after someone else's edit (shared/registrations.py).
- Rows that break the rules new input must follow (a server name outside the configured namespaces, control
  characters or bidirectional overrides in names and descriptions, tool names equal after NFKC and case
  folding) are reported as warnings and left as they are: changing them silently would change what clients
  were approved to use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.migrate import MigrationError
from shared.models import check_multi_line, check_single_line, tool_name_key
from shared.settings import RegistrySettings

logger = logging.getLogger("mcp_registry.migrate")
LISTED = 50

SELECT_CASE_COLLISIONS_SQL = """
SELECT lower(server_name) AS folded, array_agg(registration_id ORDER BY created_at, registration_id) AS ids,
       array_agg(server_name ORDER BY created_at, registration_id) AS names
  FROM registrations
 GROUP BY lower(server_name)
HAVING count(*) > 1
 ORDER BY 1
"""
CASE_INSENSITIVE_NAMES_SQL = """
ALTER TABLE registrations DROP CONSTRAINT registrations_server_name_key;
CREATE UNIQUE INDEX registrations_server_name_key ON registrations (lower(server_name));
ALTER TABLE registrations
    ADD COLUMN edited_at timestamptz,
    ADD COLUMN edited_by uuid REFERENCES users (user_id);
"""
SELECT_CHECKED_FIELDS_SQL = """
SELECT registration_id, server_name, endpoint_name, description, available_tools FROM registrations
"""


async def migrate(conn: asyncpg.Connection) -> None:
    collisions = await conn.fetch(SELECT_CASE_COLLISIONS_SQL)
    if collisions:
        described = [
            " and ".join(f"{rid} ({name})" for rid, name in zip(row["ids"], row["names"], strict=True))
            for row in collisions[:LISTED]
        ]
        raise MigrationError(
            f"{len(collisions)} server name(s) differ only in case: " + "; ".join(described)
            + ". Server names become unique ignoring case. Nothing was changed. Rename all but one with the current "
            "app (PATCH /api/registrations/{id} with a new server_name while it is not Approved, or delete it), "
            "then run the migration again."
        )
    await conn.execute(CASE_INSENSITIVE_NAMES_SQL)
    await report_rule_breakers(conn, RegistrySettings.from_env())


async def report_rule_breakers(conn: asyncpg.Connection, settings: RegistrySettings) -> None:
    found: list[str] = []
    async for row in conn.cursor(SELECT_CHECKED_FIELDS_SQL, prefetch=5000):
        problems = _problems(row, settings)
        if problems:
            found.append(f"{row['registration_id']} ({row['server_name']}): {'; '.join(problems)}")
    for line in found[:LISTED]:
        logger.warning("registration breaks a rule new input must follow, left unchanged: %s", line)
    if len(found) > LISTED:
        logger.warning("… and %d more registrations like these", len(found) - LISTED)


def _problems(row: asyncpg.Record, settings: RegistrySettings) -> list[str]:
    problems = []
    if not settings.in_namespace(row["server_name"]):
        problems.append(f"server_name is outside the namespace(s) {', '.join(settings.namespaces)}")
    tools: list[dict[str, Any]] = row["available_tools"] if isinstance(row["available_tools"], list) else json.loads(row["available_tools"])
    texts: list[tuple[str, str | None, Callable[[str], str]]] = [
        ("endpoint_name", row["endpoint_name"], check_single_line),
        ("description", row["description"], check_multi_line),
    ]
    for index, tool in enumerate(tools):
        texts.append((f"available_tools.{index}.name", tool.get("name"), check_single_line))
        texts.append((f"available_tools.{index}.description", tool.get("description"), check_multi_line))
    for field, text, check in texts:
        if text is None:
            continue
        try:
            check(text)
        except ValueError as exc:
            problems.append(f"{field} {exc}")
    keys = [tool_name_key(str(tool.get("name", ""))) for tool in tools]
    if len(keys) != len(set(keys)):
        problems.append("available_tools has names that are equal after NFKC and case folding")
    return problems
