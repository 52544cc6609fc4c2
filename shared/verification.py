"""Verification: probing registrations' endpoints over MCP (shared/probe.py), recording what was found, and
catching an approved server's tools changing afterwards.

- On demand: an admin probes one registration (`POST /registrations/{id}/verification`).
- On a schedule (the `probe_approved_servers` timer): Approved registrations due for a probe are claimed in
  one statement (`FOR NO KEY UPDATE … SKIP LOCKED`, next due time moved one interval on), at most
  PROBE_BATCH_SIZE per run, probed PROBE_CONCURRENCY at a time.
- At approval, the current verified tool set becomes the approved one (or the approval records that the server
  was unverified; its first verified tool set is then taken as approved: trust on first use).
- Drift: a verified probe of an Approved registration whose tools differ from the approved set sets `drifted`,
  names the added, removed and changed tools, and writes an audit entry (`Updated`, metadata.event
  `ToolsDrifted`) in the same transaction;
  with PROBE_DRIFT_ACTION=suspend the server also leaves the MCP Registry until an admin approves the new set
  (`POST /registrations/{id}/verification/approve-tools`, audited as `Updated` with event `ToolsApproved`).

The MCP SDK is imported inside `_probe`, when a probe first runs: the app's cold start does not pay for it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import azure.functions as func

from shared import db
from shared.errors import InvalidStateTransition, NotFound, PreconditionFailed
from shared.fingerprints import fingerprints_by_name, tool_drift
from shared.http import json_response
from shared.schedule import Schedule
from shared.settings import ProbeSettings, get_probe_settings
from shared.tokens import Caller
from shared.verification_models import ToolSetApproval, Verification, with_declared_difference

if TYPE_CHECKING:
    from shared.probe import ProbeResult

logger = logging.getLogger(__name__)

# The user the scheduled probe's audit entries name (sql/0012).
PROBE_USER_ID = UUID("00000000-0000-0000-0000-00000000b07e")
# A claimed server is due again a little before the next run, so that run's clock or start delay cannot skip it.
INTERVAL_FRACTION = 0.9

# For the MCP Registry queries (over `registrations r`): suspended servers are not served.
SERVED_CONDITION = (
    "NOT EXISTS (SELECT 1 FROM registration_verifications sv WHERE sv.registration_id = r.registration_id AND sv.suspended)"
)
# For the MCP Registry's `_meta`: the last probe's status, time and tools fingerprint (`unverified`: no probe yet).
REGISTRY_VERIFICATION_COLUMN = """
    coalesce(
        (SELECT jsonb_build_object('status', rv.status, 'checkedAt', rv.checked_at, 'toolsFingerprint', rv.tools_fingerprint)
           FROM registration_verifications rv WHERE rv.registration_id = r.registration_id),
        '{"status": "unverified"}'::jsonb
    ) AS verification
"""
# For the MCP Registry's change generation (its ETags, $1 the sync horizon): what it serves changes with every
# recorded probe and tool approval too, not only with the registrations' own updated_at.
VERIFICATION_GENERATION = "(SELECT max(updated_at) FROM registration_verifications WHERE updated_at < $1)"
REGISTRY_VERIFICATION_FILTER = (
    "coalesce((SELECT fv.status FROM registration_verifications fv WHERE fv.registration_id = r.registration_id), "
    "'unverified') = $?"
)

SELECT_TARGET_SQL = "SELECT endpoint_url, transport, available_tools FROM registrations WHERE registration_id = $1"

# Every registration that has been probed or decided has a verification row; it is created on first use.
ENSURE_VERIFICATION_SQL = """
INSERT INTO registration_verifications (registration_id)
SELECT registration_id FROM registrations WHERE registration_id = $1
ON CONFLICT (registration_id) DO NOTHING
"""
LOCK_VERIFICATION_SQL = """
SELECT v.*, r.status AS registration_status
  FROM registration_verifications v JOIN registrations r USING (registration_id)
 WHERE v.registration_id = $1
   FOR NO KEY UPDATE OF v
"""

RECORD_PROBE_SQL = """
UPDATE registration_verifications
   SET status = $2, checked_at = now(), updated_at = now(), detail = $3, protocol_version = $4, server_info = $5,
       capabilities = $6, tools = $7, tools_fingerprint = $8, resource_metadata = $9, drift = $10, approved_tools = $11,
       approved_tools_fingerprint = $12, tools_approved_at = $13, suspended = $14
 WHERE registration_id = $1
RETURNING *
"""

# Tool events are `Updated` entries of the registration, told apart by metadata.event (see sql/0012).
INSERT_AUDIT_SQL = """
INSERT INTO audit_log (registration_id, user_id, action, previous_status, new_status, metadata)
VALUES ($1, $2, 'Updated', $3, $3, jsonb_build_object('event', $4::text) || $5::jsonb)
"""

# Approval: the verified tool set at this moment becomes the approved one.
APPROVE_CURRENT_TOOLS_SQL = """
UPDATE registration_verifications
   SET approved_tools = CASE WHEN status = 'verified' THEN $2::jsonb END,
       approved_tools_fingerprint = CASE WHEN status = 'verified' THEN tools_fingerprint END,
       tools_approved_at = CASE WHEN status = 'verified' THEN now() END,
       tools_approved_by = CASE WHEN status = 'verified' THEN $3::uuid END,
       approved_unverified = status <> 'verified',
       drift = NULL, suspended = false, updated_at = now()
 WHERE registration_id = $1
"""

APPROVE_TOOLS_SQL = """
UPDATE registration_verifications
   SET approved_tools = $2, approved_tools_fingerprint = tools_fingerprint, tools_approved_at = now(),
       tools_approved_by = $3, status = 'verified', drift = NULL, suspended = false, updated_at = now()
 WHERE registration_id = $1
RETURNING *
"""

# Approved registrations due for a probe, oldest due first; rows another run is claiming are skipped.
CLAIM_DUE_SQL = """
WITH due AS (
    SELECT r.registration_id
      FROM registrations r
      LEFT JOIN registration_verifications v USING (registration_id)
     WHERE r.status = 'Approved' AND (v.next_probe_at IS NULL OR v.next_probe_at <= now())
     ORDER BY v.next_probe_at NULLS FIRST, r.registration_id
     LIMIT $1
       FOR NO KEY UPDATE OF r SKIP LOCKED
), claimed AS (
    INSERT INTO registration_verifications (registration_id, next_probe_at)
    SELECT registration_id, now() + $2::interval FROM due
    ON CONFLICT (registration_id) DO UPDATE SET next_probe_at = excluded.next_probe_at
     WHERE registration_verifications.next_probe_at <= now()
    RETURNING registration_id
)
SELECT r.registration_id, r.endpoint_url, r.transport
  FROM claimed c JOIN registrations r USING (registration_id)
"""


# ---------------------------------------------------------------- probing and recording


async def _probe(endpoint_url: str, transport: str, settings: ProbeSettings) -> ProbeResult:
    # Here, not at the top: the MCP SDK loads with a worker's first probe, never at the app's cold start.
    from shared.probe import probe_endpoint

    return await probe_endpoint(endpoint_url, transport, settings)


def _updated_row(current: asyncpg.Record, result: ProbeResult, drift_action: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The verification row after this probe, and the drift audit entry's metadata if one is due."""
    row = dict(current)
    row.update(
        status=result.status,
        detail=result.detail,
        protocol_version=result.protocol_version,
        server_info=result.server_info,
        capabilities=result.capabilities,
        tools=result.tools,
        tools_fingerprint=result.tools_fingerprint,
        resource_metadata=result.resource_metadata,
        drift=None,
    )
    if result.status != "verified" or current["registration_status"] != "Approved" or result.tools is None:
        return row, None
    current_tools = fingerprints_by_name(result.tools)
    if current["approved_tools"] is None:
        # Approved before any probe verified it: the first verified tool set is the approved one.
        row.update(approved_tools=current_tools, approved_tools_fingerprint=result.tools_fingerprint)
        return row, None
    if result.tools_fingerprint == current["approved_tools_fingerprint"]:
        return row, None
    drift = tool_drift(current["approved_tools"], current_tools)
    row.update(status="drifted", drift=drift, suspended=current["suspended"] or drift_action == "suspend")
    already_reported = current["status"] == "drifted" and current["tools_fingerprint"] == result.tools_fingerprint
    if already_reported:
        return row, None
    audit = {
        **drift,
        "approved_tools_fingerprint": current["approved_tools_fingerprint"],
        "tools_fingerprint": result.tools_fingerprint,
        "drift_action": drift_action,
    }
    return row, audit


async def record_probe(
    registration_id: UUID, result: ProbeResult, *, drift_action: str, trigger: dict[str, Any]
) -> asyncpg.Record | None:
    """Store a probe's outcome (None if the registration is gone), with its drift audit entry if due."""
    async with db.transaction() as conn:
        current = await lock_verification(conn, registration_id)
        if current is None:
            return None
        row, audit = _updated_row(current, result, drift_action)
        updated = await conn.fetchrow(
            RECORD_PROBE_SQL,
            registration_id,
            row["status"],
            row["detail"],
            row["protocol_version"],
            row["server_info"],
            row["capabilities"],
            row["tools"],
            row["tools_fingerprint"],
            row["resource_metadata"],
            row["drift"],
            row["approved_tools"],
            row["approved_tools_fingerprint"],
            row["tools_approved_at"],
            row["suspended"],
        )
        if audit is not None:
            await conn.execute(
                INSERT_AUDIT_SQL, registration_id, PROBE_USER_ID, "Approved", "ToolsDrifted", {**audit, **trigger}
            )
    return updated


def verification_of(row: asyncpg.Record | None) -> Verification:
    return Verification.model_validate(dict(row) if row is not None else None)


async def verify_registration_response(registration_id: UUID, caller: Caller) -> func.HttpResponse:
    """Probe one registration now and answer what was found (within PROBE_TIMEOUT_S plus two statements)."""
    settings = get_probe_settings()
    async with db.connection() as conn:
        target = await conn.fetchrow(SELECT_TARGET_SQL, registration_id)
    if target is None:
        raise NotFound("Registration not found")
    result = await _probe(target["endpoint_url"], target["transport"], settings)
    row = await record_probe(
        registration_id,
        result,
        drift_action=settings.drift_action,
        trigger={"trigger": "admin", "requested_by": str(caller.user_id)},
    )
    if row is None:
        raise NotFound("Registration not found")
    declared = {str(tool["name"]) for tool in target["available_tools"]}
    return json_response(with_declared_difference(verification_of(row), declared))


# ---------------------------------------------------------------- approvals


async def lock_verification(conn: asyncpg.Connection, registration_id: UUID) -> asyncpg.Record | None:
    """The verification row with its registration's status, locked for this transaction (None: no registration)."""
    await conn.execute(ENSURE_VERIFICATION_SQL, registration_id)
    return await conn.fetchrow(LOCK_VERIFICATION_SQL, registration_id)


def approval_metadata(current: asyncpg.Record | None) -> dict[str, Any]:
    """What the approval's audit entry records about the tools it approves."""
    if current is None or current["status"] != "verified":
        return {"verification": "unverified" if current is None else current["status"]}
    return {"verification": "verified", "tools_fingerprint": current["tools_fingerprint"]}


async def approve_current_tools(
    conn: asyncpg.Connection, registration_id: UUID, current: asyncpg.Record | None, caller: Caller
) -> None:
    """At approval: the verified tool set becomes the approved one, or the approval is marked unverified."""
    tools = fingerprints_by_name(current["tools"]) if current is not None and current["tools"] else {}
    await conn.execute(APPROVE_CURRENT_TOOLS_SQL, registration_id, tools, caller.user_id)


async def approve_tools_response(registration_id: UUID, body: ToolSetApproval, caller: Caller) -> func.HttpResponse:
    """An admin approves the tool set the last probe found (a drifted or newly verified one)."""
    async with db.transaction() as conn:
        current = await lock_verification(conn, registration_id)
        if current is None:
            raise NotFound("Registration not found")
        if current["registration_status"] != "Approved":
            raise InvalidStateTransition("Only an Approved registration's tool set is approved this way")
        if current["status"] not in {"verified", "drifted"} or current["tools"] is None:
            raise InvalidStateTransition("The last probe did not verify a tool set; probe the endpoint first")
        if body.tools_fingerprint != current["tools_fingerprint"]:
            raise PreconditionFailed("The tool set changed since it was reviewed; read the verification again")
        updated = await conn.fetchrow(
            APPROVE_TOOLS_SQL, registration_id, fingerprints_by_name(current["tools"]), caller.user_id
        )
        metadata = {
            "approved_tools_fingerprint": current["tools_fingerprint"],
            "previous_approved_tools_fingerprint": current["approved_tools_fingerprint"],
            "drift": current["drift"],
            "was_suspended": current["suspended"],
        }
        await conn.execute(INSERT_AUDIT_SQL, registration_id, caller.user_id, "Approved", "ToolsApproved", metadata)
    return json_response(verification_of(updated))


# ---------------------------------------------------------------- the schedule


def claim_interval(settings: ProbeSettings) -> timedelta:
    return Schedule.parse(settings.schedule).shortest_interval() * INTERVAL_FRACTION


async def claim_due(batch_size: int, interval: timedelta) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        return list(await conn.fetch(CLAIM_DUE_SQL, batch_size, interval))


async def run_scheduled_probes() -> int:
    """Probe the Approved registrations that are due: one batch, bounded concurrency. Returns how many."""
    settings = get_probe_settings()
    claimed = await claim_due(settings.batch_size, claim_interval(settings))
    gate = asyncio.Semaphore(settings.concurrency)

    async def probe_one(target: asyncpg.Record) -> None:
        async with gate:
            result = await _probe(target["endpoint_url"], target["transport"], settings)
            await record_probe(
                target["registration_id"], result, drift_action=settings.drift_action, trigger={"trigger": "schedule"}
            )

    outcomes = await asyncio.gather(*(probe_one(target) for target in claimed), return_exceptions=True)
    for target, outcome in zip(claimed, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # One failure (a database hiccup) does not stop the batch; the server is due again next interval.
            logger.error(
                "Scheduled probe of registration %s failed", target["registration_id"], exc_info=outcome
            )
    logger.info("Scheduled probe run: %d registrations probed", len(claimed))
    return len(claimed)
