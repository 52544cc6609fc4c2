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
#   Steps 2 and 3 (besides the migrations) are infra/hooks/database_setup.py.
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
arm="$(az cloud show --query endpoints.resourceManager -o tsv)"
# Same API version as infra/modules/postgres.bicep.
server_url="${arm%/}${server_id}?api-version=2025-08-01"

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
"${py[@]}" -m infra.hooks.database_setup check-owner

echo "postprovision: applying migrations to ${POSTGRES_HOST}/${POSTGRES_DATABASE}"
"${py[@]}" -m shared.migrate

echo "postprovision: creating database role ${APP_IDENTITY_NAME} and granting data access"
"${py[@]}" -m infra.hooks.database_setup app-role

echo "postprovision: done. API: ${API_BASE_URL:-<see azd env get-values>}"
