#!/usr/bin/env bash
# azd postprovision hook: schema deployment for the new PostgreSQL server.
#   1. opens a temporary firewall rule for this machine's public IP (POSTGRES_HOOK_OPEN_FIREWALL=false
#      to skip, e.g. when running inside the VNet or when postgresFirewallRules already covers you);
#   2. runs `python -m shared.migrate` as the Entra administrator (the deploying user), directly on
#      port 5432 (never through PgBouncer: migrations use an advisory lock and DDL);
#   3. creates the app's database role for its managed identity (pgaadauth_create_principal) and
#      grants it data access only (no DDL): the function app never changes the schema.
# Needs: Azure CLI signed in as the PostgreSQL Entra administrator (`az login`), uv (or a Python 3.11
# with the project's dependencies), curl. azd passes the Bicep outputs as environment variables.
# Safe to re-run (`azd hooks run postprovision`): migrations and grants are idempotent.
set -euo pipefail

if [[ "${POSTGRES_HOOK_SKIP:-false}" == "true" ]]; then
  echo "postprovision: POSTGRES_HOOK_SKIP=true, skipping schema deployment"
  exit 0
fi

: "${AZURE_RESOURCE_GROUP:?missing (azd output)}"
: "${POSTGRES_SERVER_NAME:?missing (azd output)}"
: "${POSTGRES_HOST:?missing (azd output)}"
: "${POSTGRES_DATABASE:?missing (azd output)}"
: "${POSTGRES_ADMIN_NAME:?missing (azd output)}"
: "${APP_IDENTITY_NAME:?missing (azd output)}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if command -v uv >/dev/null 2>&1; then
  py=(uv run --frozen python)
else
  py=(python3)
fi

rule=""
cleanup() {
  if [[ -n "$rule" ]]; then
    echo "postprovision: removing temporary firewall rule $rule"
    az postgres flexible-server firewall-rule delete --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" --yes --output none || true
  fi
}
trap cleanup EXIT

if [[ "${POSTGRES_HOOK_OPEN_FIREWALL:-true}" == "true" ]]; then
  ip="$(curl -fsS --max-time 10 https://api.ipify.org)"
  rule="azd-postprovision-$(date +%s)"
  echo "postprovision: temporary firewall rule $rule for $ip"
  az postgres flexible-server firewall-rule create --resource-group "$AZURE_RESOURCE_GROUP" \
    --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" \
    --start-ip-address "$ip" --end-ip-address "$ip" --output none
fi

# The administrator signs in with an Entra token as the password (valid about an hour: plenty).
# DATABASE_AUTH=password: asyncpg takes the password from PGPASSWORD (the app's entra mode uses the
# managed identity, which does not exist on a developer machine).
PGPASSWORD="$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv)"
export PGPASSWORD
admin_user="$("${py[@]}" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$POSTGRES_ADMIN_NAME")"
export DATABASE_AUTH=password
# Backfills derive MCP server names in this namespace (sql/0002).
export MCP_SERVER_NAMESPACE="${MCP_SERVER_NAMESPACE:-com.example.mcp}"
export DB_SSL="${DB_SSL:-verify-full}"
export DATABASE_URL="postgresql://${admin_user}@${POSTGRES_HOST}:5432/${POSTGRES_DATABASE}"

echo "postprovision: applying migrations to ${POSTGRES_HOST}/${POSTGRES_DATABASE}"
"${py[@]}" -m shared.migrate

echo "postprovision: creating database role ${APP_IDENTITY_NAME} and granting data access"
"${py[@]}" - <<'PY'
import asyncio
import os

import asyncpg

from shared.db import ssl_context_for
from shared.settings import DatabaseSettings

role = os.environ["APP_IDENTITY_NAME"]
database = os.environ["POSTGRES_DATABASE"]
admin_url = os.environ["DATABASE_URL"]


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def main() -> None:
    settings = DatabaseSettings.from_env()
    ssl = ssl_context_for(settings)
    # Entra principals are created from the `postgres` database.
    base, _, _ = admin_url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres", ssl=ssl)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            # pgaadauth_create_principal(role name, is admin, is MFA): the name is the managed
            # identity's name, which is also the user name in the app's DATABASE_URL.
            await conn.execute("SELECT * FROM pgaadauth_create_principal($1, false, false)", role)
            print(f"created role {role}")
        else:
            print(f"role {role} exists")
    finally:
        await conn.close()

    conn = await asyncpg.connect(admin_url, ssl=ssl)
    try:
        r = ident(role)
        statements = [
            f"GRANT CONNECT ON DATABASE {ident(database)} TO {r}",
            # No DDL for the app (PostgreSQL < 15 still lets PUBLIC create in schema public).
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f"GRANT USAGE ON SCHEMA public TO {r}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
            # Tables created by later migrations (run by this administrator) get the same grants.
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
            # The migration ledger is read-only for the app.
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE schema_migrations FROM {r}",
            # Planner settings the app sends at connect time, set on the role so they also hold behind
            # PgBouncer (which refuses them as startup parameters): see shared/db.py.
            f"ALTER ROLE {r} SET jit = off",
            f"ALTER ROLE {r} SET random_page_cost = 1.1",
        ]
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
        print(f"granted data access on {database} to {role}")
    finally:
        await conn.close()


asyncio.run(main())
PY

echo "postprovision: done. API: ${API_BASE_URL:-<see azd env get-values>}"
