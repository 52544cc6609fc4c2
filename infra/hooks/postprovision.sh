#!/usr/bin/env bash
# azd postprovision hook: schema deployment for the new PostgreSQL server.
#   1. reaches the server from this machine (POSTGRES_HOOK_NETWORK):
#      - `public-window` (default): with private networking the server's public network access is
#        Disabled; the hook turns it on, adds a firewall rule for this machine's public IP only, and
#        turns both off again when it ends (also on failure). Without private networking only the rule.
#      - `direct`: change nothing; this machine already reaches the server (inside the VNet, over a
#        VPN with the privatelink DNS zone, or listed in postgresFirewallRules).
#   2. checks that the Entra administrator owns the application database (infra/modules/postgres.bicep
#      creates it after the administrator for that reason), then runs `python -m shared.migrate` as
#      that administrator, directly on port 5432 (never through PgBouncer: advisory lock and DDL);
#   3. creates the app's database role bound to its managed identity's object id
#      (pgaadauth_create_principal_with_oid) and grants it data access only (no DDL); sets the
#      planner settings the app relies on with ALTER DATABASE ... SET (the owner may; ALTER ROLE on a
#      role the platform created needs ADMIN OPTION on PostgreSQL 16).
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
: "${APP_IDENTITY_PRINCIPAL_ID:?missing (azd output)}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if command -v uv >/dev/null 2>&1; then
  py=(uv run --frozen python)
else
  py=(python3)
fi

server_id="$(az postgres flexible-server show --resource-group "$AZURE_RESOURCE_GROUP" \
  --name "$POSTGRES_SERVER_NAME" --query id -o tsv)"
# Same API version as infra/modules/postgres.bicep.
server_url="https://management.azure.com${server_id}?api-version=2025-08-01"

# Sets the server's public network access and waits until the server is Ready with that value.
set_public_access() {
  az rest --method patch --url "$server_url" --output none \
    --body "{\"properties\": {\"network\": {\"publicNetworkAccess\": \"$1\"}}}"
  for _ in $(seq 1 60); do
    state="$(az rest --method get --url "$server_url" \
      --query '[properties.state, properties.network.publicNetworkAccess]' -o tsv | tr '\n\t' '  ')"
    [[ "$state" == "Ready $1 " ]] && return 0
    sleep 10
  done
  echo "postprovision: the server did not reach publicNetworkAccess=$1 in 10 minutes" >&2
  return 1
}

rule=""
reopened=false
cleanup() {
  if [[ -n "$rule" ]]; then
    echo "postprovision: removing temporary firewall rule $rule"
    az postgres flexible-server firewall-rule delete --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" --yes --output none || true
  fi
  if [[ "$reopened" == "true" ]]; then
    echo "postprovision: disabling public network access again"
    set_public_access Disabled || echo "postprovision: WARNING: disable public access by hand" >&2
  fi
}
trap cleanup EXIT

network="${POSTGRES_HOOK_NETWORK:-public-window}"
case "$network" in
  direct)
    echo "postprovision: POSTGRES_HOOK_NETWORK=direct, connecting without changing the server's network" ;;
  public-window)
    if [[ "$(az rest --method get --url "$server_url" --query properties.network.publicNetworkAccess -o tsv)" == "Disabled" ]]; then
      echo "postprovision: enabling public network access for the schema deployment (disabled again at the end)"
      reopened=true
      set_public_access Enabled
    fi
    ip="$(curl -fsS --max-time 10 https://api.ipify.org)"
    rule="azd-postprovision-$(date +%s)"
    echo "postprovision: temporary firewall rule $rule for $ip"
    az postgres flexible-server firewall-rule create --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$POSTGRES_SERVER_NAME" --rule-name "$rule" \
      --start-ip-address "$ip" --end-ip-address "$ip" --output none ;;
  *)
    echo "postprovision: POSTGRES_HOOK_NETWORK must be public-window or direct, not '$network'" >&2
    exit 2 ;;
esac

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

echo "postprovision: checking that ${POSTGRES_ADMIN_NAME} owns ${POSTGRES_DATABASE}"
"${py[@]}" - <<'PY'
import asyncio
import os
import sys

import asyncpg

from shared.db import ssl_context_for
from shared.settings import DatabaseSettings


async def main() -> None:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"], ssl=ssl_context_for(DatabaseSettings.from_env()))
    try:
        owner, can_create = await conn.fetchrow(
            "SELECT pg_get_userbyid(datdba), has_schema_privilege('public', 'CREATE')"
            " FROM pg_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    if not can_create:
        sys.exit(
            f"postprovision: the database is owned by {owner!r} and {os.environ['POSTGRES_ADMIN_NAME']!r} cannot"
            " create tables in its public schema. It was created before the Entra administrator existed; drop it"
            " (az postgres flexible-server db delete) and run `azd provision` again so it is created after the"
            " administrator (infra/modules/postgres.bicep)."
        )
    print(f"owner {owner}: the administrator can create tables")


asyncio.run(main())
PY

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
object_id = os.environ["APP_IDENTITY_PRINCIPAL_ID"]
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
            # pgaadauth_create_principal_with_oid(role name, object id, object type, is admin, is MFA):
            # the role is bound to the identity's object id, not looked up by its display name. The
            # name is the identity's name, which is also the user name in the app's DATABASE_URL.
            await conn.execute(
                "SELECT * FROM pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)", role, object_id
            )
            print(f"created role {role} for object id {object_id}")
        else:
            # The platform records the binding as the role's pgaadauth security label ("...oid=<id>...").
            label = await conn.fetchval(
                "SELECT label FROM pg_shseclabel l JOIN pg_roles r ON r.oid = l.objoid"
                " WHERE l.provider = 'pgaadauth' AND r.rolname = $1",
                role,
            )
            if label and object_id.lower() not in label.lower():
                raise SystemExit(
                    f"postprovision: role {role} is bound to another identity ({label}); drop it and run the hook"
                    " again (an identity that was deleted and created again gets a new object id)"
                )
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
            # Planner settings the app sends at connect time, set on the database so they also hold
            # behind PgBouncer (which refuses them as startup parameters): see shared/db.py. The owner
            # may ALTER DATABASE; ALTER ROLE on the platform-created app role would need ADMIN OPTION.
            f"ALTER DATABASE {ident(database)} SET jit = off",
            f"ALTER DATABASE {ident(database)} SET random_page_cost = 1.1",
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
