"""The benchmark's data: a dedicated database per size, migrated like production and filled with COPY.

`mcpreg_bench_<size>` on the bench server (default 127.0.0.1:5432) gets users, registrations (realistic
URLs, names, descriptions and tools; ~60 % Approved, 25 % Pending, 15 % Rejected) and their audit trail
(Created for every registration, a decision for every decided one, Updated for ~10 %), loaded through the
production bulk path (devtools.bulk_load: one transaction, counter triggers on, secondary indexes built after
the COPY), so 1M registrations take minutes. A database that was
seeded completely with the same size and seed version is reused as is.

Stand-alone: `uv run python -m bench.seed --size 100k`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devtools.bulk_load import bulk_load
from devtools.local_issuer import LOCAL_TENANT_ID
from shared.migrate import apply_migrations

SEED_VERSION = "4"
DEFAULT_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SIZES = {"smoke": 2_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
# The users the benchmark signs in as (tokens are minted for them): user 0 is an admin.
TOKEN_USERS = 20
ADMIN_USERS = 5
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=700)

# A term found in a few percent of the registrations, and the shape of a term found in exactly one.
COMMON_TERM = "github"
SERVICES = [
    "github", "jira", "confluence", "salesforce", "postgres", "kusto", "sharepoint", "teams", "calendar",
    "weather", "servicenow", "slack", "zendesk", "snowflake", "databricks", "gitlab", "pagerduty", "grafana",
    "datadog", "notion", "figma", "hubspot", "stripe", "twilio", "okta", "workday", "bigquery", "redis",
    "kubernetes", "terraform", "azure-devops", "outlook", "onedrive", "power-bi", "dynamics", "sap",
    "oracle", "mongodb", "elastic", "splunk",
]
TEAMS = [
    "platform", "data", "finance", "hr", "sales", "marketing", "security", "devex", "support", "legal",
    "research", "ops", "mobile", "web", "identity", "billing", "analytics", "search", "infra", "qa",
]
DOMAINS = ["contoso.com", "fabrikam.io", "northwind.net", "adventure-works.com", "tailspin.dev", "woodgrove.org"]
PATHS = ["/mcp", "/mcp", "/mcp", "/v1/mcp", "/sse", "/api/mcp", "/mcp/stream"]
KINDS = ["Connector", "Gateway", "Tools", "Assistant", "Bridge", "Server", "Toolkit", "Proxy"]
VERBS = ["list", "get", "search", "create", "update", "delete", "sync", "export", "summarize", "query"]
NOUNS = [
    "issues", "tickets", "pages", "records", "reports", "events", "users", "files", "dashboards", "alerts",
    "deployments", "invoices", "contacts", "tables", "metrics", "incidents", "messages", "projects",
]
SENTENCES = [
    "Exposes {svc} to Copilot agents through the Model Context Protocol.",
    "Read-only access to {svc} {noun} for the {team} team.",
    "Lets assistants {verb} {noun} in {svc} with the caller's permissions.",
    "Maintained by {team}; rate limited to 100 requests per minute.",
    "Wraps the internal {svc} API and its {noun} endpoints.",
    "Supports streaming responses and pagination of large {noun} sets.",
    "Owned by the {team} engineering group; on-call via PagerDuty.",
    "Bridges {svc} and {svc2} so agents can correlate {noun}.",
    "Production endpoint; staging lives behind the VPN.",
    "Audit-logged; personal data is redacted before it leaves the tenant.",
]


@dataclass(frozen=True)
class SeedPlan:
    name: str
    registrations: int

    @property
    def users(self) -> int:
        return max(TOKEN_USERS + 10, self.registrations // 20)

    @property
    def database(self) -> str:
        return f"mcpreg_bench_{self.name}"


def plan_for(size: str) -> SeedPlan:
    key = size.lower()
    if key in SIZES:
        return SeedPlan(key, SIZES[key])
    count = int(key.replace("_", ""))
    return SeedPlan(str(count), count)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def token_user_oid(index: int) -> str:
    """The Entra object id of seeded user `index` (tokens for the first TOKEN_USERS are minted from it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mcpreg-bench-user-{index}"))


def user_profile(index: int) -> tuple[str, str]:
    """(email, display name) of seeded user `index`, as the seed stores them and its token carries them."""
    team = TEAMS[index % len(TEAMS)]
    return f"user{index:06d}@{team}.contoso.com", f"Bench User {index} ({team})"


def user_id_of(index: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mcpreg-bench-user-id-{index}")


def rare_term(index: int) -> str:
    """A search term that matches exactly one seeded registration (its URL's host label)."""
    return f"{SERVICES[index % len(SERVICES)]}-{index:07d}"


# ---------------------------------------------------------------- row generators


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _tool_lists(rng: random.Random, count: int) -> list[str]:
    lists = []
    for _ in range(count):
        names = rng.sample([f"{verb}_{noun}" for verb in VERBS for noun in NOUNS], rng.randint(0, 8))
        tools: list[dict[str, Any]] = []
        for name in names:
            tool: dict[str, Any] = {"name": name}
            if rng.random() < 0.8:
                verb, noun = name.split("_", 1)
                tool["description"] = f"{verb.capitalize()} {noun} visible to the signed-in user"
            if rng.random() < 0.3:
                tool["version"] = f"{rng.randint(1, 3)}.{rng.randint(0, 9)}"
            tools.append(tool)
        lists.append(json.dumps(tools))
    return lists


def user_rows(plan: SeedPlan, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for index in range(plan.users):
        email, name = user_profile(index)
        created = EPOCH + timedelta(seconds=rng.randint(0, 3600 * 24 * 30))
        yield (
            user_id_of(index),
            uuid.UUID(LOCAL_TENANT_ID),
            token_user_oid(index),
            None,
            email,
            name,
            index < ADMIN_USERS,
            created,
            created,
        )


def registration_and_audit_rows(
    plan: SeedPlan, rng: random.Random
) -> tuple[Iterator[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Registrations (streamed) and their audit entries (collected while streaming, COPYed after)."""
    audit: list[tuple[Any, ...]] = []
    tool_lists = _tool_lists(rng, 512)
    step = SPAN / plan.registrations

    def rows() -> Iterator[tuple[Any, ...]]:
        for index in range(plan.registrations):
            svc = SERVICES[index % len(SERVICES)]
            svc2 = SERVICES[rng.randrange(len(SERVICES))]
            team = TEAMS[rng.randrange(len(TEAMS))]
            domain = DOMAINS[rng.randrange(len(DOMAINS))]
            noun = NOUNS[rng.randrange(len(NOUNS))]
            verb = VERBS[rng.randrange(len(VERBS))]
            host = f"mcp-{rare_term(index)}.{team}.{domain}"
            url = f"https://{host}{PATHS[rng.randrange(len(PATHS))]}"
            name = f"{team.capitalize()} {svc.replace('-', ' ').title()} {KINDS[rng.randrange(len(KINDS))]}"
            sentences = rng.sample(SENTENCES, rng.randint(1, 4))
            description = " ".join(s.format(svc=svc, svc2=svc2, team=team, noun=noun, verb=verb) for s in sentences)
            if rng.random() < 0.05:
                description = None
            owner = f"{team}-mcp@{domain}" if rng.random() < 0.7 else f"{team.capitalize()} team"
            tools = tool_lists[rng.randrange(len(tool_lists))]
            roll = rng.random()
            status = "Approved" if roll < 0.60 else ("Pending" if roll < 0.85 else "Rejected")
            registration_id = _uuid(rng)
            submitter = user_id_of(rng.randrange(plan.users))
            created = EPOCH + step * index + timedelta(seconds=rng.randint(0, 59))
            approver = approved_at = None
            updated = created
            if status != "Pending":
                approver = user_id_of(rng.randrange(ADMIN_USERS))
                approved_at = created + timedelta(minutes=rng.randint(5, 60 * 72))
                updated = approved_at
            server_name = f"com.{domain.split('.')[0]}.{team}/{rare_term(index)}"
            yield (
                registration_id, url, name, description, owner, tools, status, submitter, approver,
                created, approved_at, created, updated, server_name, "1.0.0",
                "sse" if url.endswith("/sse") else "streamable-http",
            )
            initial = json.dumps(
                {"endpoint_url": url, "endpoint_name": name, "description": description, "owner_contact": owner}
            )
            audit.append((_uuid(rng), registration_id, submitter, "Created", None, "Pending", initial, created))
            if status != "Pending":
                reason = '{"reason": "Reviewed by the platform team"}' if rng.random() < 0.5 else "{}"
                audit.append((_uuid(rng), registration_id, approver, status, "Pending", status, reason, approved_at))
            if rng.random() < 0.10:
                when = created + timedelta(minutes=rng.randint(1, 60))
                change = json.dumps({"changes": {"description": {"before": "draft", "after": description}}})
                audit.append((_uuid(rng), registration_id, submitter, "Updated", "Pending", "Pending", change, when))

    return rows(), audit


# ---------------------------------------------------------------- the database


async def _existing_seed(admin_dsn: str, plan: SeedPlan) -> bool:
    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", plan.database)
    finally:
        await admin.close()
    if not exists:
        return False
    conn = await asyncpg.connect(with_database(admin_dsn, plan.database))
    try:
        done = await conn.fetchval(
            "SELECT value FROM bench_meta WHERE key = 'seeded'"
            if await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL")
            else "SELECT NULL"
        )
        return bool(done == f"{SEED_VERSION}:{plan.registrations}")
    finally:
        await conn.close()


async def recreate_database(admin_dsn: str, plan: SeedPlan) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{plan.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{plan.database}"')
    finally:
        await admin.close()


async def vacuum_database(conn: asyncpg.Connection) -> None:
    # Every table: the counter rows that each write updates bloat fastest (registration_counts reached 19 MB).
    await conn.execute("VACUUM (ANALYZE)")


async def seed(plan: SeedPlan, admin_dsn: str = DEFAULT_SERVER_DSN, *, force: bool = False, log: Any = print) -> str:
    """Create (or reuse) the plan's database; returns its DSN."""
    dsn = with_database(admin_dsn, plan.database)
    if not force and await _existing_seed(admin_dsn, plan):
        conn = await asyncpg.connect(dsn)
        try:
            applied = await apply_migrations(conn)
        finally:
            await conn.close()
        log(f"seed: reusing {plan.database}" + (f" (applied {', '.join(applied)})" if applied else ""))
        return dsn
    started = time.perf_counter()
    await recreate_database(admin_dsn, plan)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        rng = random.Random(20251111)
        users = list(user_rows(plan, rng))
        rows, audit = registration_and_audit_rows(plan, rng)
        # The production bulk path: one transaction, counter triggers on, indexes built after the rows.
        loaded = await bulk_load(conn, users=users, registrations=rows, audit_entries=audit, log=log)
        await conn.execute(
            "INSERT INTO bench_meta (key, value) VALUES ('load_seconds', $1)", str(loaded.seconds)
        )
        log(f"seed: {loaded.registrations} registrations, {loaded.audit_entries} audit entries loaded in {loaded.seconds}s")
        await vacuum_database(conn)
        await conn.execute(
            "INSERT INTO bench_meta (key, value) VALUES ('seeded', $1)", f"{SEED_VERSION}:{plan.registrations}"
        )
    finally:
        await conn.close()
    log(f"seed: {plan.database} ready in {time.perf_counter() - started:.1f}s")
    return dsn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__)
    parser.add_argument("--size", default="10k", help="smoke, 10k, 100k, 1m or a number of registrations")
    parser.add_argument("--server-dsn", default=DEFAULT_SERVER_DSN)
    parser.add_argument("--force", action="store_true", help="re-seed even if the database is complete")
    args = parser.parse_args(argv)
    asyncio.run(seed(plan_for(args.size), args.server_dsn, force=args.force))


if __name__ == "__main__":
    main()
