#!/usr/bin/env bash
# Start a PgBouncer in transaction pooling mode on 127.0.0.1:6432 in front of the PostgreSQL on
# 127.0.0.1:5432 (how Azure Database for PostgreSQL's built-in PgBouncer runs), for running the API test
# suite through it:
#
#   bash .ci/pgbouncer.sh
#   TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:6432/postgres \
#   TEST_MIGRATION_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres uv run pytest -q
#
# Installs Debian's pgbouncer package when it is missing. Idempotent: does nothing when something already
# listens on the port. Prints nothing but errors. Settings (environment): PGBOUNCER_PORT (6432),
# PGBOUNCER_TARGET_HOST (127.0.0.1), PGBOUNCER_TARGET_PORT (5432), PGBOUNCER_DIR (a new temp folder).
#
# Migrations never go through it: the migration runner holds a session advisory lock across statements,
# which transaction pooling cannot keep; they connect to PostgreSQL directly (TEST_MIGRATION_DATABASE_URL).
set -euo pipefail

port="${PGBOUNCER_PORT:-6432}"
target_host="${PGBOUNCER_TARGET_HOST:-127.0.0.1}"
target_port="${PGBOUNCER_TARGET_PORT:-5432}"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening "$port"; then
  exit 0
fi

bin="$(command -v pgbouncer || true)"
if [ -z "$bin" ] && [ -x /usr/sbin/pgbouncer ]; then bin=/usr/sbin/pgbouncer; fi
if [ -z "$bin" ]; then
  export DEBIAN_FRONTEND=noninteractive
  log="$(mktemp)"
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends pgbouncer; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
  # The package starts its own service with the default config on some systems: not ours, stop it.
  (service pgbouncer stop >/dev/null 2>&1 || true)
  bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
fi

dir="${PGBOUNCER_DIR:-$(mktemp -d /tmp/pgbouncer-XXXXXX)}"
mkdir -p "$dir"
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$target_host port=$target_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
; Protocol-level prepared statements are not kept across transactions (PgBouncer < 1.21 cannot, and
; Azure's default is max_prepared_statements = 0): the app runs with DB_STATEMENT_CACHE_SIZE=0.
; A test suite creates and drops many databases: keep per-database pools small and short-lived.
server_idle_timeout = 30
; Session state never outlives a transaction (as on a busy production bouncer); this also drops any
; session advisory lock at once, so a migration run through the bouncer by mistake cannot wedge it.
server_reset_query = DISCARD ALL
server_reset_query_always = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
cat >"$dir/userlist.txt" <<USERS
"postgres" ""
"root" ""
USERS

# PgBouncer refuses to run as root: run it as the postgres user when there is one.
run_as=()
if [ "$(id -u)" = "0" ]; then
  user="postgres"
  id "$user" >/dev/null 2>&1 || user="nobody"
  chown -R "$user" "$dir"
  run_as=(-u "$user")
fi

if ! "$bin" -d "${run_as[@]}" "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1; then
  cat "$dir/start.log" >&2
  exit 1
fi

for _ in $(seq 1 100); do
  if listening "$port"; then
    exit 0
  fi
  sleep 0.1
done
echo "pgbouncer did not start listening on 127.0.0.1:$port; log: $dir/pgbouncer.log" >&2
cat "$dir/start.log" >&2 || true
tail -n 20 "$dir/pgbouncer.log" >&2 || true
exit 1
