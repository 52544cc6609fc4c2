"""Endpoint URLs in their canonical form (shared/urls.py), so that every spelling of one URL is one registration.

Each stored URL is canonicalised in Python (the WHATWG parser is not available in SQL) and the results go to a
temporary table; the database then finds the rows whose canonical forms collide and rewrites the rest with one
UPDATE. Nothing is ever merged or deleted: when two registrations turn out to be one endpoint, or a stored URL
is no longer acceptable (user info, a fragment), the migration stops, names every such registration, says how
to resolve it, and the whole migration run is rolled back (the runner applies all pending files in one
transaction). Run again once resolved; on canonical data the step changes nothing.

A CHECK then keeps what no canonical URL contains out of the column for good: user info and fragments.
"""

from __future__ import annotations

import asyncpg

from shared.migrate import MigrationError
from shared.urls import InvalidEndpointUrl, canonical_endpoint_url

# How many problem rows an error message lists before it says how many more there are.
LISTED = 50

CREATE_CANONICAL_TABLE_SQL = """
CREATE TEMPORARY TABLE canonical_endpoint_urls (
    registration_id uuid PRIMARY KEY,
    endpoint_url    text NOT NULL
) ON COMMIT DROP
"""
SELECT_COLLISIONS_SQL = """
SELECT c.endpoint_url AS canonical,
       array_agg(r.registration_id ORDER BY r.created_at, r.registration_id) AS registration_ids,
       array_agg(r.endpoint_url ORDER BY r.created_at, r.registration_id) AS spellings
  FROM canonical_endpoint_urls c
  JOIN registrations r USING (registration_id)
 GROUP BY c.endpoint_url
HAVING count(*) > 1
 ORDER BY c.endpoint_url
"""
UPDATE_TO_CANONICAL_SQL = """
UPDATE registrations r
   SET endpoint_url = c.endpoint_url
  FROM canonical_endpoint_urls c
 WHERE c.registration_id = r.registration_id
   AND r.endpoint_url IS DISTINCT FROM c.endpoint_url
"""
# Every canonical http(s) URL has an authority without "@" followed by a path, and no "#".
ADD_CANONICAL_CHECK_SQL = """
ALTER TABLE registrations
    ADD CONSTRAINT registrations_endpoint_url_canonical
    CHECK (endpoint_url ~ '^https?://[^/?#@]+/[^#]*$')
"""

HOW_TO_RESOLVE = (
    "Nothing was changed. Resolve each one with the current version of the app (PATCH "
    "/api/registrations/{id} with a new endpoint_url, or DELETE it), then run the migration again."
)


async def migrate(conn: asyncpg.Connection) -> None:
    await conn.execute(CREATE_CANONICAL_TABLE_SQL)
    canonical: list[tuple[object, str]] = []
    refused: list[str] = []
    async for row in conn.cursor("SELECT registration_id, endpoint_url FROM registrations", prefetch=5000):
        try:
            canonical.append((row["registration_id"], canonical_endpoint_url(row["endpoint_url"])))
        except InvalidEndpointUrl as exc:
            refused.append(f"{row['registration_id']} ({row['endpoint_url']!r}: {exc})")
    if refused:
        raise MigrationError(
            f"{len(refused)} registration(s) have an endpoint URL that is no longer accepted: "
            + "; ".join(refused[:LISTED])
            + _more(len(refused))
            + ". "
            + HOW_TO_RESOLVE
        )
    await conn.copy_records_to_table("canonical_endpoint_urls", records=canonical)
    collisions = await conn.fetch(SELECT_COLLISIONS_SQL)
    if collisions:
        described = [
            f"{row['canonical']} is registered {len(row['registration_ids'])} times: "
            + ", ".join(f"{rid} ({spelling})" for rid, spelling in zip(row["registration_ids"], row["spellings"], strict=True))
            for row in collisions[:LISTED]
        ]
        raise MigrationError(
            f"{len(collisions)} endpoint(s) are registered more than once under different spellings: "
            + "; ".join(described)
            + _more(len(collisions))
            + ". Keep one registration per endpoint. "
            + HOW_TO_RESOLVE
        )
    await conn.execute(UPDATE_TO_CANONICAL_SQL)
    await conn.execute(ADD_CANONICAL_CHECK_SQL)


def _more(count: int) -> str:
    return f" (and {count - LISTED} more)" if count > LISTED else ""
