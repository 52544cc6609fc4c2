"""The benchmark driver: `uv run python -m bench --size 10k` (see bench/README.md).

Seeds (or reuses) `mcpreg_bench_<size>`, measures cold start, counts database round trips per request
through a wire-protocol proxy, then serves the app with `python -m devtools.local_host` and drives every
scenario with wrk (a separate process; bench.loadgen when wrk is missing) at each concurrency for a fixed
duration, each followed by its floor (the same SQL straight through asyncpg). Prints a table and writes
bench/results/<size>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from bench import seed as seeding
from bench.floor import capture, create_floor_pool, run_floor
from bench.pgproxy import CountingProxy

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
FAKE_APPINSIGHTS = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/"
)
LIST_LIMIT = 20
# Settings the serving process must not inherit from the driver's environment.
SCRUBBED = ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID", "ENTRA_OPENID_CONFIG_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "LOCAL_ISSUER_ENABLED", "DATABASE_URL")


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- processes and measurements


def cpu_ticks(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick


def rss_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m devtools.local_host` in its own process, against the bench database."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path, app: str | None = None) -> None:
        self.port, self.env, self.log_path, self.app = port, env, log_path, app
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def start(self) -> None:
        self.spawned_at = time.perf_counter()
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devtools.local_host", "--port", str(self.port), *(["--app", self.app] if self.app else [])],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_listening(self, timeout_s: float = 90.0) -> float:
        """Seconds from spawn until the port accepts connections (no request is sent)."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return time.perf_counter() - self.spawned_at
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"server did not listen on {self.port} within {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def http_request(port: int, method: str, path: str, token: str | None = None, body: bytes | None = None) -> tuple[int, bytes, float]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload, time.perf_counter() - started
    finally:
        conn.close()


# ---------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    mode: str  # get | create | approve
    expect: int
    token_set: str  # none | users | admin
    items: list[str]
    call_app: Callable[[dict[str, Any]], Awaitable[Any]]  # the handler call the floor captures
    base: dict[str, Any]  # the variant the capture used
    variants: Callable[[], Iterator[dict[str, Any]]]  # per-request values for the floor
    write: bool = False
    count_samples: int = 20


@dataclass
class Context:
    dsn: str
    plan: seeding.SeedPlan
    tokens: dict[str, list[str]]
    user_ids: list[uuid.UUID]
    admin: Any  # shared.tokens.Caller
    users: list[Any]
    ids: list[uuid.UUID]
    urls: list[str]
    days: list[tuple[datetime, datetime]]
    months: list[tuple[datetime, datetime]]  # 30-day windows that start and end inside a day
    deep_offset: int
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cycle_variants(key: str, values: list[Any]) -> Callable[[], Iterator[dict[str, Any]]]:
    return lambda: ({key: value} for value in itertools.cycle(values))


def constant_variant() -> Iterator[dict[str, Any]]:
    return itertools.repeat({})


def build_scenarios(ctx: Context) -> list[Scenario]:
    from shared import audit, health, registrations, users
    from shared.models import (
        AuditLogQuery,
        ByUrlQuery,
        MyRegistrationsQuery,
        RegistrationCreate,
        RegistrationListQuery,
        StatusChange,
    )

    def list_call(params: dict[str, str]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        return lambda v: registrations.list_registrations(RegistrationListQuery.model_validate({**params, **v}))

    def list_path(params: dict[str, str]) -> str:
        return "/api/registrations?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())

    limit = {"limit": str(LIST_LIMIT)}
    # The admin's audit page reads 50 entries (the API's default).
    audit_limit = {"limit": "50"}
    actions = ["Created", "Approved", "Rejected", "Updated"]
    audit_users = [seeding.user_id_of(n) for n in range(0, ctx.plan.users, max(1, ctx.plan.users // 100))]

    def audit_call(params: dict[str, str]) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        return lambda v: audit.list_audit_logs(AuditLogQuery.model_validate({**params, **v}))

    def audit_path(params: dict[str, str]) -> str:
        return "/api/audit-logs?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())

    rare = [seeding.rare_term(i) for i in range(0, ctx.plan.registrations, max(1, ctx.plan.registrations // 100))]
    statuses = ["Approved", "Pending", "Rejected"]
    create_token = "zqx000000000"

    async def create_call(v: dict[str, Any]) -> Any:
        body = RegistrationCreate.model_validate({
            "endpoint_url": f"https://bench-w-floor-{ctx.nonce}-{v['token']}.example.net/mcp",
            "endpoint_name": f"Bench Floor {ctx.nonce} {v['token']}",
            "description": "Registered by the benchmark floor.",
            "owner_contact": "bench@example.com",
            "available_tools": [{"name": "search_issues", "description": "Search issues"},
                                {"name": "get_issue", "version": "1.0"}],
        })
        return await registrations.create_registration(body, ctx.admin, base_url="http://127.0.0.1/api/registrations")

    def create_variants() -> Iterator[dict[str, Any]]:
        return ({"token": f"zqx{n:09d}"} for n in itertools.count(1))

    return [
        Scenario("health", "get", 200, "none", ["/api/health"], lambda v: health.health_response(), {},
                 constant_variant),
        Scenario("list_first", "get", 200, "users", [list_path(limit)], list_call(limit), {}, constant_variant),
        # The existing frontend's Browse page and "is this URL free?" check: one page of 1000.
        Scenario("list_1000", "get", 200, "users", [list_path({"limit": "1000"})], list_call({"limit": "1000"}), {},
                 constant_variant),
        Scenario("list_deep", "get", 200, "users", [list_path({**limit, "offset": str(ctx.deep_offset)})],
                 list_call({**limit, "offset": str(ctx.deep_offset)}), {}, constant_variant),
        Scenario("list_status", "get", 200, "users", [list_path({**limit, "status": s}) for s in statuses],
                 list_call(limit), {"status": "Approved"}, cycle_variants("status", statuses)),
        Scenario("search_common", "get", 200, "users", [list_path({**limit, "search": seeding.COMMON_TERM})],
                 list_call({**limit, "search": seeding.COMMON_TERM}), {}, constant_variant),
        Scenario("search_rare", "get", 200, "users", [list_path({**limit, "search": t}) for t in rare],
                 list_call(limit), {"search": rare[0]}, cycle_variants("search", rare)),
        Scenario("by_url", "get", 200, "users",
                 [f"/api/registrations/by-url?endpoint_url={quote(u, safe='')}" for u in ctx.urls],
                 lambda v: registrations.get_registration_by_url(ByUrlQuery(endpoint_url=v["url"])),
                 {"url": ctx.urls[0]}, cycle_variants("url", ctx.urls)),
        Scenario("get_by_id", "get", 200, "users", [f"/api/registrations/{i}" for i in ctx.ids],
                 lambda v: registrations.get_registration(v["id"]), {"id": ctx.ids[0]},
                 cycle_variants("id", ctx.ids)),
        Scenario("my_registrations", "get", 200, "users", [list_path(limit).replace("registrations?", "registrations/my?")],
                 lambda v: registrations.list_my_registrations(
                     MyRegistrationsQuery.model_validate(limit), next(c for c in ctx.users if c.user_id == v["user"])),
                 {"user": ctx.user_ids[0]}, cycle_variants("user", ctx.user_ids)),
        Scenario("users_me", "get", 200, "users", ["/api/users/me"],
                 lambda v: users.get_user_response(v["user"]), {"user": ctx.user_ids[0]},
                 cycle_variants("user", ctx.user_ids)),
        Scenario("audit_by_registration", "get", 200, "admin", [f"/api/audit-logs?registration_id={i}" for i in ctx.ids],
                 lambda v: audit.list_audit_logs(AuditLogQuery.model_validate({"registration_id": str(v["id"])})),
                 {"id": ctx.ids[0]}, cycle_variants("id", ctx.ids)),
        Scenario("audit_by_date", "get", 200, "admin",
                 [f"/api/audit-logs?from={quote(iso(a))}&to={quote(iso(b))}" for a, b in ctx.days],
                 lambda v: audit.list_audit_logs(AuditLogQuery.model_validate({"from": iso(v["from"]), "to": iso(v["to"])})),
                 {"from": ctx.days[0][0], "to": ctx.days[0][1]},
                 lambda: ({"from": a, "to": b} for a, b in itertools.cycle(ctx.days))),
        Scenario("audit_first", "get", 200, "admin", [audit_path(audit_limit)], audit_call(audit_limit), {},
                 constant_variant),
        Scenario("audit_deep", "get", 200, "admin", [audit_path({**limit, "offset": str(ctx.deep_offset)})],
                 audit_call({**limit, "offset": str(ctx.deep_offset)}), {}, constant_variant),
        Scenario("audit_by_user", "get", 200, "admin", [audit_path({**audit_limit, "user_id": str(u)}) for u in audit_users],
                 audit_call(audit_limit), {"user_id": str(audit_users[0])},
                 cycle_variants("user_id", [str(u) for u in audit_users])),
        Scenario("audit_by_action", "get", 200, "admin", [audit_path({**audit_limit, "action": a}) for a in actions],
                 audit_call(audit_limit), {"action": actions[0]}, cycle_variants("action", actions)),
        Scenario("audit_30_days", "get", 200, "admin",
                 [audit_path({**audit_limit, "from": iso(a), "to": iso(b)}) for a, b in ctx.months],
                 lambda v: audit.list_audit_logs(AuditLogQuery.model_validate({**audit_limit, "from": iso(v["from"]), "to": iso(v["to"])})),
                 {"from": ctx.months[0][0], "to": ctx.months[0][1]},
                 lambda: ({"from": a, "to": b} for a, b in itertools.cycle(ctx.months))),
        Scenario("create", "create", 201, "users", [], create_call, {"token": create_token}, create_variants,
                 write=True, count_samples=5),
        Scenario("approve", "approve", 200, "admin", [],
                 lambda v: registrations.decide_registration(v["id"], StatusChange(status="Approved", reason="floor"), ctx.admin),
                 {}, constant_variant, write=True, count_samples=5),
    ]


# ---------------------------------------------------------------- data helpers


async def sample_context(dsn: str, plan: seeding.SeedPlan, tokens: dict[str, list[str]]) -> Context:
    from shared.tokens import Caller

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT registration_id, endpoint_url FROM registrations TABLESAMPLE BERNOULLI($1) "
            "WHERE endpoint_url NOT LIKE 'https://bench-w-%' LIMIT 1000",
            min(100.0, 200_000.0 / max(plan.registrations, 1)),
        )
        first, last = await conn.fetchrow('SELECT min("timestamp"), max("timestamp") FROM audit_log')
    finally:
        await conn.close()
    ids = [row["registration_id"] for row in rows]
    urls = [row["endpoint_url"] for row in rows]
    span_days = max(1, (last - first).days - 1)
    days = []
    for n in range(100):
        start = (first + timedelta(days=(n * 37) % span_days)).replace(hour=0, minute=0, second=0, microsecond=0)
        days.append((start, start + timedelta(days=1)))
    months = []
    for n in range(100):
        start = first + timedelta(days=(n * 37) % max(1, span_days - 31), hours=7, minutes=n % 60)
        months.append((start, start + timedelta(days=30, hours=5)))
    tenant = uuid.UUID(seeding.LOCAL_TENANT_ID)
    callers = []
    for index in range(seeding.TOKEN_USERS):
        email, name = seeding.user_profile(index)
        callers.append(Caller(user_id=seeding.user_id_of(index), tenant_id=tenant, oid=seeding.token_user_oid(index),
                              email=email, name=name, is_admin=index < seeding.ADMIN_USERS))
    return Context(
        dsn=dsn, plan=plan, tokens=tokens, user_ids=[c.user_id for c in callers], admin=callers[0], users=callers,
        ids=ids, urls=urls, days=days, months=months, deep_offset=min(10_000, plan.registrations // 2),
    )


async def wait_app_idle(dsn: str, limit_s: float = 60.0) -> float:
    """After wrk stops, the server may still work off queued requests: wait until none of its queries run."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        while time.perf_counter() - started < limit_s:
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mcp-registry-api' AND state = 'active'"
            )
            if not busy:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return round(time.perf_counter() - started, 2)


async def insert_pending(dsn: str, count: int, label: str) -> list[str]:
    """Fresh Pending registrations for an approve run (ids in a random order)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            INSERT INTO registrations (endpoint_url, endpoint_name, owner_contact, submitter_id, server_name)
            SELECT 'https://bench-w-' || $1 || '-' || n || '.example.net/mcp', 'Bench Pending ' || n,
                   'bench@example.com', $2, 'com.bench.w/' || $1 || '-' || n
              FROM generate_series(1, $3) AS n
            RETURNING registration_id
            """,
            label, seeding.user_id_of(seeding.TOKEN_USERS), count,
        )
    finally:
        await conn.close()
    return [str(row["registration_id"]) for row in rows]


async def vacuum(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await seeding.vacuum_database(conn)
    finally:
        await conn.close()


async def cleanup_writes(dsn: str) -> int:
    """Remove what write scenarios added: two statements, whose counter triggers run once each (sql/0009)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            deleted = await conn.fetchval(
                """
                WITH gone AS (
                    DELETE FROM registrations WHERE endpoint_url LIKE 'https://bench-w-%' RETURNING registration_id
                ), audit AS (
                    DELETE FROM audit_log a USING gone WHERE a.registration_id = gone.registration_id
                )
                SELECT count(*) FROM gone
                """
            )
    finally:
        await conn.close()
    return int(deleted or 0)


# ---------------------------------------------------------------- load runs


WARM_UP_S = 1.0


async def warm_up(server: Server, config: Path, scenario: Scenario, tokens: list[str], ctx: Context, dsn: str,
                  pool_size: int, generator: str) -> None:
    """One unmeasured second of the scenario at the pool's size before its measured runs.

    Its first requests prepare the scenario's statements on every pooled connection and fill the caches a
    serving worker keeps (callers, remembered list totals); cold start is measured on its own. wrk 4 corrects
    for coordinated omission, so a single 300 ms first request in a c=1 run becomes ~50 synthetic samples
    and its p95 jumps from 5 ms to 160 ms.
    """
    items = scenario.items
    if scenario.mode == "approve":
        items = await insert_pending(dsn, 1500, f"warm-{ctx.nonce}")
    write_wrk_config(config, scenario, tokens, items, f"{ctx.nonce}warm")
    await run_load(server.port, config, pool_size, WARM_UP_S, server.pid, generator)
    if scenario.write:
        await cleanup_writes(dsn)
    await wait_app_idle(dsn)


CEILING_CONCURRENCY = 32


async def measure_ceiling(report: dict[str, Any], scenarios: list[Scenario], config: Path, env: dict[str, str],
                          log_path: Path, ctx: Context, dsn: str, pool_size: int, generator: str,
                          duration: float) -> dict[str, Any]:
    """get_by_id at c=32 against bench.ceiling_app (the query and nothing else) behind the same local host."""
    scenario = next(s for s in scenarios if s.name == "get_by_id")
    server = Server(free_port(), env, log_path, app="bench.ceiling_app:app")
    server.start()
    try:
        await asyncio.to_thread(server.wait_listening)
        await warm_up(server, config, scenario, [], ctx, dsn, pool_size, generator)
        write_wrk_config(config, scenario, [], scenario.items, f"{ctx.nonce}ceiling")
        raw = await run_load(server.port, config, CEILING_CONCURRENCY, duration, server.pid, generator)
    finally:
        server.stop()
    result = summarize_http(raw, scenario.expect)
    floor = next((r.get("floor") for r in report["runs"]
                  if r["scenario"] == "get_by_id" and r["concurrency"] == CEILING_CONCURRENCY), None)
    ceiling: dict[str, Any] = {"scenario": "get_by_id", "concurrency": CEILING_CONCURRENCY, "app": result}
    if floor and floor.get("rps"):
        ceiling["ceiling_over_floor"] = round(result["rps"] / floor["rps"], 3)
    log(f"  ceiling (query only)   c={CEILING_CONCURRENCY:<3} {result['rps']:8.1f} rps  p95 {result['p95_ms']:7.1f} ms  "
        f"errors {fmt_errors(result['errors'])}  ceiling/floor {ceiling.get('ceiling_over_floor', '-')}")
    return ceiling


def write_wrk_config(path: Path, scenario: Scenario, tokens: list[str], items: list[str], nonce: str) -> None:
    lines = [f"mode\t{scenario.mode}", f"nonce\t{nonce}"]
    lines += [f"token\t{token}" for token in tokens]
    lines += [f"item\t{item}" for item in items]
    path.write_text("\n".join(lines) + "\n")


APP_BACKENDS_SQL = """
SELECT pid, wait_event_type, state <> 'idle' AS busy FROM pg_stat_activity
 WHERE application_name = 'mcp-registry-api' AND datname = current_database()
"""
SAMPLE_EVERY_S = 0.05


class DatabaseSampler:
    """While a run lasts: the app's backends in pg_stat_activity every 50 ms (how many wait on a lock) and
    the CPU time of those backend processes (/proc/<pid>/stat), i.e. the database CPU the app's requests cost."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples = 0
        self.backend_samples = 0
        self.busy_samples = 0
        self.lock_waits = 0
        self.cpu_start: dict[int, float] = {}
        self.cpu_end: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @staticmethod
    def _cpu(pids: list[int]) -> dict[int, float]:
        found = {}
        for pid in pids:
            try:
                found[pid] = cpu_ticks(pid)
            except OSError:  # the backend exited
                pass
        return found

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.dsn)
        rows = await self._conn.fetch(APP_BACKENDS_SQL)
        self.cpu_start = self._cpu([row["pid"] for row in rows])
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while not self._stop.is_set():
            rows = await self._conn.fetch(APP_BACKENDS_SQL)
            self.samples += 1
            self.backend_samples += len(rows)
            self.busy_samples += sum(1 for row in rows if row["busy"])
            self.lock_waits += sum(1 for row in rows if row["wait_event_type"] == "Lock")
            for row in rows:
                self.cpu_start.setdefault(row["pid"], 0.0)  # a connection opened during the run: all its CPU
            try:
                await asyncio.wait_for(self._stop.wait(), SAMPLE_EVERY_S)
            except TimeoutError:
                pass

    async def stop(self) -> dict[str, Any]:
        self.cpu_end = self._cpu(list(self.cpu_start))
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._conn.close()
        db_cpu = sum(self.cpu_end[pid] - self.cpu_start[pid] for pid in self.cpu_end)
        return {
            "samples": self.samples,
            "app_backends_mean": round(self.backend_samples / self.samples, 2) if self.samples else None,
            "app_backends_busy_mean": round(self.busy_samples / self.samples, 2) if self.samples else None,
            # Of the app's connections (the floor's idle pool included, hence also the share of busy ones).
            "lock_wait_share": round(self.lock_waits / self.backend_samples, 4) if self.backend_samples else None,
            "lock_wait_share_of_busy": round(self.lock_waits / self.busy_samples, 4) if self.busy_samples else None,
            "app_backend_cpu_s": round(db_cpu, 3),
        }


async def run_load(port: int, config: Path, concurrency: int, duration: float, server_pid: int, generator: str,
                   dsn: str | None = None) -> dict[str, Any]:
    if generator == "wrk":
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
                   f"http://127.0.0.1:{port}"]
    else:
        command = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--connections", str(concurrency),
                   "--duration", str(duration)]
    env = {**os.environ, "BENCH_WRK_CONFIG": str(config)}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_ticks(server_pid)
    busy_before, total_before = machine_busy()
    sampler = DatabaseSampler(dsn) if dsn is not None else None
    if sampler is not None:
        await sampler.start()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await process.communicate()
    wall = time.perf_counter() - started
    database = await sampler.stop() if sampler is not None else None
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = cpu_ticks(server_pid)
    busy_after, total_after = machine_busy()
    line = next((ln for ln in stdout.decode().splitlines() if ln.startswith("BENCHJSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"{generator} failed ({process.returncode}): {stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCHJSON "))
    gen_cpu = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    cores = os.cpu_count() or 1
    busy = busy_after - busy_before
    result["cpu"] = {
        "wall_s": round(wall, 3),
        "generator_s": round(gen_cpu, 3),
        "server_s": round(server_after - server_before, 3),
        "machine_busy_s": round(busy, 3),
        "machine_capacity_s": round((total_after - total_before), 3),
        "generator_share_of_busy": round(gen_cpu / busy, 3) if busy > 0 else None,
        "cores": cores,
        # Anything else running on the machine shows here (other test suites compete for the same 2 cores).
        "loadavg_1m_after": os.getloadavg()[0],
    }
    if database is not None:
        result["database"] = database
    return result


def summarize_http(result: dict[str, Any], expect: int) -> dict[str, Any]:
    seconds = result["duration_us"] / 1e6
    statuses = {k: v for k, v in result["statuses"].items() if int(k) != expect}
    socket_errors = {k: v for k, v in result["socket_errors"].items() if v}
    latency = result["latency_us"]
    return {
        "requests": result["requests"],
        "ok": result["statuses"].get(str(expect), 0),
        "errors": {**statuses, **socket_errors},
        "rps": round(result["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": latency["p50"] / 1000, "p95_ms": latency["p95"] / 1000, "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "cpu": result["cpu"],
        "database": result.get("database"),
    }


def percentile(values: list[int], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] / 1000


# ---------------------------------------------------------------- cold start


def measure_imports(repeats: int) -> dict[str, Any]:
    code = ("import sys, time; {preload}t = time.perf_counter(); import function_app; "
            "print(f'BENCH_IMPORT_S={{time.perf_counter() - t}}', file=sys.stderr, flush=True)")
    results: dict[str, Any] = {}
    # The Python worker on Azure has imported azure.functions (and its werkzeug) before it loads the app:
    # "worker_preloaded" times only what loading function_app adds there.
    cases = (
        ("without_telemetry", {}, ""),
        ("with_telemetry", {"APPLICATIONINSIGHTS_CONNECTION_STRING": FAKE_APPINSIGHTS}, ""),
        ("without_telemetry_worker_preloaded", {}, "import azure.functions; "),
    )
    for label, extra, preload in cases:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(extra)
        imports, walls = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code.format(preload=preload)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            walls.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise RuntimeError(f"import function_app failed: {done.stderr[-2000:]}")
            marker = next(ln for ln in done.stderr.splitlines() if ln.startswith("BENCH_IMPORT_S="))
            imports.append(float(marker.split("=", 1)[1]))
        results[label] = {
            "import_ms_median": round(statistics.median(imports) * 1000, 1),
            "import_ms_min": round(min(imports) * 1000, 1),
            "process_wall_ms_median": round(statistics.median(walls) * 1000, 1),
            "runs": len(imports),
        }
    return results


def measure_first_request(env: dict[str, str], token: str, repeats: int, log_path: Path) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        server = Server(free_port(), env, log_path)
        server.start()
        try:
            listening = server.wait_listening()
            status, _, first = http_request(server.port, "GET", "/api/users/me", token)
            status2, _, second = http_request(server.port, "GET", "/api/users/me", token)
            runs.append({"listening_s": listening, "first_ms": first * 1000, "first_status": status,
                         "second_ms": second * 1000, "second_status": status2})
        finally:
            server.stop()
    return {
        "first_request_ms_median": round(statistics.median(r["first_ms"] for r in runs), 1),
        "second_request_ms_median": round(statistics.median(r["second_ms"] for r in runs), 1),
        "spawn_to_listening_s_median": round(statistics.median(r["listening_s"] for r in runs), 2),
        "statuses": sorted({r["first_status"] for r in runs} | {r["second_status"] for r in runs}),
        "runs": runs,
    }


# ---------------------------------------------------------------- round trips


async def count_round_trips(scenarios: list[Scenario], ctx: Context, env: dict[str, str], log_path: Path) -> dict[str, Any]:
    proxy = CountingProxy("127.0.0.1", 5432)
    proxy_port = await proxy.start()
    counting_env = {**env, "DATABASE_URL": seeding.with_database(f"postgresql://postgres@127.0.0.1:{proxy_port}/postgres", ctx.plan.database)}
    server = Server(free_port(), counting_env, log_path)
    server.start()
    results: dict[str, Any] = {}
    try:
        await asyncio.to_thread(server.wait_listening)
        for token in ctx.tokens["users"] + ctx.tokens["admin"]:
            await asyncio.to_thread(http_request, server.port, "GET", "/api/users/me", token)
        for scenario in scenarios:
            tokens = ctx.tokens.get(scenario.token_set, [])
            if scenario.mode == "approve":
                items = await insert_pending(ctx.dsn, scenario.count_samples * 2, f"count-{ctx.nonce}")
            else:
                items = scenario.items
            requests = []
            for n in range(scenario.count_samples * 2):
                token = tokens[n % len(tokens)] if tokens else None
                if scenario.mode == "create":
                    body = json.dumps({"endpoint_url": f"https://bench-w-count-{ctx.nonce}-{scenario.name}-{n}.example.net/mcp",
                                       "endpoint_name": f"Bench Count {ctx.nonce} {n}", "owner_contact": "bench@example.com",
                                       "available_tools": ["search"]}).encode()
                    requests.append(("POST", "/api/registrations", token, body))
                elif scenario.mode == "approve":
                    requests.append(("PATCH", f"/api/registrations/{items[n]}/status", token, b'{"status":"Approved"}'))
                else:
                    requests.append(("GET", items[n % len(items)], token, None))
            warm, measured = requests[: scenario.count_samples], requests[scenario.count_samples :]
            for method, path, token, body in warm:  # prepares statements on the connection(s)
                await asyncio.to_thread(http_request, server.port, method, path, token, body)
            proxy.counts.reset()
            statuses = []
            for method, path, token, body in measured:
                status, _, _ = await asyncio.to_thread(http_request, server.port, method, path, token, body)
                statuses.append(status)
            n = len(measured)
            results[scenario.name] = {
                "requests": n,
                "statuses": sorted(set(statuses)),
                "round_trips_per_request": round(proxy.counts.round_trips / n, 2),
                "idle_round_trips_per_request": round(proxy.counts.idle_round_trips / n, 2),
                "statements": {sql: round(count / n, 2) for sql, count in proxy.counts.statements.most_common()},
            }
        await cleanup_writes(ctx.dsn)
    finally:
        server.stop()
        await proxy.close()
    return results


# ---------------------------------------------------------------- the run


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = [line for line in git("status", "--porcelain", "--", "shared", "function_app.py", "sql").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "dirty_app_files": dirty}


def mint_tokens() -> dict[str, list[str]]:
    from devtools.local_issuer import LOCAL_CLIENT_ID, LOCAL_TENANT_ID, TokenClaims, load_or_create_key, mint_token

    key = load_or_create_key()
    tokens: dict[str, list[str]] = {"users": [], "admin": [], "none": []}
    for index in range(seeding.TOKEN_USERS):
        email, name = seeding.user_profile(index)
        admin = index < seeding.ADMIN_USERS
        claims = TokenClaims(LOCAL_TENANT_ID, LOCAL_CLIENT_ID, oid=seeding.token_user_oid(index), email=email, name=name,
                             admin_role="Admin" if admin else None, expires_in=6 * 3600)
        token = mint_token(key, claims.payload())
        tokens["users"].append(token)
        if index == 0:
            tokens["admin"].append(token)
    return tokens


def server_env(dsn: str, pool_size: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.pop("PYTHONUNBUFFERED", None)
    env.update({"DATABASE_URL": dsn, "LOG_LEVEL": env.get("BENCH_LOG_LEVEL", "INFO")})
    if pool_size is not None:
        env["DB_POOL_MAX_SIZE"] = str(pool_size)
    return env


def fmt_errors(errors: dict[str, int]) -> str:
    return ",".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "-"


def _db_ms_per_request(row: dict[str, Any]) -> str:
    database = row["app"].get("database") or {}
    requests = row["app"]["requests"]
    return f"{1000 * database['app_backend_cpu_s'] / requests:.2f}" if database and requests else "-"


def _lock_share(row: dict[str, Any]) -> str:
    share = (row["app"].get("database") or {}).get("lock_wait_share_of_busy")
    return f"{100 * share:.1f}" if share is not None else "-"


def print_table(report: dict[str, Any]) -> None:
    header = (f"{'scenario':22} {'c':>3} {'reqs':>7} {'errors':>12} {'rps':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
              f"{'floor rps':>9} {'fl p95':>7} {'app/fl':>6} {'gen%':>5} {'srv%':>5} {'busy':>5} {'load':>5} {'rt/req':>6} {'tx/req':>6} "
              f"{'dbms/req':>8} {'lock%':>6}")
    print("\n" + header)
    print("-" * len(header))
    for row in report["runs"]:
        floor = row.get("floor") or {}
        rt = report["round_trips"].get(row["scenario"], {})
        cpu = row["app"]["cpu"]
        wall = cpu["wall_s"] or 1
        ratio = row.get("app_over_floor")
        print(
            f"{row['scenario']:22} {row['concurrency']:>3} {row['app']['requests']:>7} {fmt_errors(row['app']['errors']):>12} "
            f"{row['app']['rps']:>8.1f} {row['app']['p50_ms']:>7.1f} {row['app']['p95_ms']:>7.1f} {row['app']['p99_ms']:>7.1f} "
            f"{floor.get('rps', 0):>9.1f} {floor.get('p95_ms', 0):>7.1f} {(f'{ratio:.2f}' if ratio is not None else '-'):>6} "
            f"{100 * cpu['generator_s'] / wall:>5.0f} {100 * cpu['server_s'] / wall:>5.0f} "
            f"{cpu['machine_busy_s'] / wall:>5.2f} {cpu['loadavg_1m_after']:>5.1f} "
            f"{rt.get('round_trips_per_request', '-'):>6} {rt.get('idle_round_trips_per_request', '-'):>6} "
            f"{_db_ms_per_request(row):>8} {_lock_share(row):>6}"
        )
    print("(latencies in ms; gen%/srv% = CPU of the load generator / serving process as % of one core; busy = cores in use "
          "on the whole machine during the run; load = 1-minute load average after it; "
          "rt/req = database round trips per request, tx/req = round trips that ended outside a transaction block; "
          "dbms/req = CPU ms of the app's database backends per request; lock% = share of the app's busy backends "
          "waiting on a lock, sampled every 50 ms)")
    cold = report.get("cold_start", {})
    if cold:
        imports = cold.get("imports", {})
        first = cold.get("first_request", {})
        print(f"\nimport function_app: {imports.get('without_telemetry', {}).get('import_ms_median')} ms without telemetry, "
              f"{imports.get('with_telemetry', {}).get('import_ms_median')} ms with APPLICATIONINSIGHTS_CONNECTION_STRING")
        print(f"first authenticated request after start: {first.get('first_request_ms_median')} ms "
              f"(second: {first.get('second_request_ms_median')} ms; spawn→listening {first.get('spawn_to_listening_s_median')} s)")
    print(f"peak RSS of the serving process: {report.get('peak_rss_mb_at_100')} MB during the 100-concurrency runs, "
          f"{report.get('peak_rss_mb_overall')} MB overall")
    ceiling = report.get("ceiling")
    if ceiling:
        print(f"ceiling (bench.ceiling_app, query only) get_by_id c={ceiling['concurrency']}: {ceiling['app']['rps']} rps, "
              f"ceiling/floor {ceiling.get('ceiling_over_floor', '-')}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = seeding.plan_for("smoke" if args.smoke else args.size)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = RESULTS_DIR / f"server-{plan.name}-{stamp}.log"
    generator = "wrk" if shutil.which("wrk") and not args.python_loadgen else "python"
    report: dict[str, Any] = {
        "size": plan.name, "registrations": plan.registrations, "git": git_state(), "generator": generator,
        "duration_s": args.duration, "concurrency": concurrencies, "list_limit": LIST_LIMIT,
        "machine": {"cpus": os.cpu_count()}, "runs": [], "round_trips": {}, "cold_start": {},
    }
    log(f"bench: size {plan.name} ({plan.registrations} registrations), generator {generator}, "
        f"{args.duration}s per run, concurrency {concurrencies}")
    dsn = await seeding.seed(plan, args.server_dsn, log=log)
    await cleanup_writes(dsn)
    # Earlier runs' writes, and their removal just now, leave pages VACUUM has not seen, and this machine's
    # PostgreSQL runs with autovacuum off. Autovacuum keeps production close to vacuumed (sql/0005), so a run
    # starts from there instead of measuring how much earlier runs wrote (offset 10 000 at 1M: 2.8 ms
    # unvacuumed, 0.9 ms vacuumed; an unfiltered list with registration_counts bloated to 19 MB: 4.9 ms).
    await vacuum(dsn)
    env = server_env(dsn, args.pool_size)
    # The driver imports the app's modules for the floor: same settings as the serving process.
    for name in SCRUBBED:
        os.environ.pop(name, None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL",)})
    if args.pool_size is not None:
        os.environ["DB_POOL_MAX_SIZE"] = str(args.pool_size)
    from shared.settings import clear_settings_cache, get_database_settings

    clear_settings_cache()
    pool_size = get_database_settings().pool_max_size
    report["pool_max_size"] = pool_size

    server = Server(args.port or free_port(), env, log_path)
    server.start()
    try:
        await asyncio.to_thread(server.wait_listening)
        tokens = mint_tokens()
        ctx = await sample_context(dsn, plan, tokens)
        for token in tokens["users"]:
            status, body, _ = await asyncio.to_thread(http_request, server.port, "GET", "/api/users/me", token)
            if status != 200:
                raise RuntimeError(f"sign-in failed: {status} {body[:300]!r}")
        scenarios = [s for s in build_scenarios(ctx) if not args.scenarios or s.name in args.scenarios.split(",")]

        if not args.skip_cold_start:
            log("cold start: import function_app, first authenticated request")
            report["cold_start"]["imports"] = await asyncio.to_thread(measure_imports, args.cold_repeats)
            report["cold_start"]["first_request"] = await asyncio.to_thread(
                measure_first_request, env, tokens["users"][1], args.cold_repeats, log_path)
        log("round trips: counting through the wire-protocol proxy")
        report["round_trips"] = await count_round_trips(scenarios, ctx, env, log_path)

        floor_pool = await create_floor_pool(pool_size) if not args.no_floor else None
        estimated: dict[tuple[str, int], float] = {}
        config = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".conf")[1])
        try:
            for scenario in scenarios:
                tokens_for = tokens.get(scenario.token_set, [])
                await warm_up(server, config, scenario, tokens_for, ctx, dsn, pool_size, generator)
                for concurrency in concurrencies:
                    row: dict[str, Any] = {"scenario": scenario.name, "concurrency": concurrency}
                    items = scenario.items
                    if scenario.mode == "approve":
                        expected = max(estimated.get(("app", concurrency), 1500.0), 200.0)
                        items = await insert_pending(dsn, int(expected * args.duration * 1.5) + 200, f"app-{ctx.nonce}-{concurrency}")
                        row["approve_pool"] = len(items)
                    write_wrk_config(config, scenario, tokens_for, items, f"{ctx.nonce}c{concurrency}")
                    reset_peak_rss(server.pid)
                    raw = await run_load(server.port, config, concurrency, args.duration, server.pid, generator, dsn)
                    row["app"] = summarize_http(raw, scenario.expect)
                    row["app"]["peak_rss_mb"] = round(rss_kib(server.pid, "VmHWM") / 1024, 1)
                    row["app"]["drain_s"] = await wait_app_idle(dsn)
                    if scenario.mode == "approve" and raw["requests"] > len(items):
                        row["note"] = "approve pool exhausted: repeated ids answer 409"
                    if scenario.name == "get_by_id":
                        estimated[("app", concurrency)] = row["app"]["rps"]
                    if floor_pool is not None:
                        base = dict(scenario.base)
                        variants = scenario.variants
                        if scenario.mode == "approve":
                            # Writes run far below the read floor: size the pool from the app's own approve rate.
                            expected = max(3 * row["app"]["rps"], 300.0)
                            ids = [uuid.UUID(i) for i in await insert_pending(
                                dsn, int(expected * args.duration * 1.5) + 200, f"floor-{ctx.nonce}-{concurrency}")]
                            base = {"id": ids[-1]}
                            variants = cycle_variants("id", ids[:-1])
                            row["floor_pool"] = len(ids) - 1
                        # Twice: the second capture is the warmed app's SQL (e.g. a filtered list passing the
                        # total it remembers, which the server process also remembers after its first request).
                        await capture(dsn, lambda s=scenario, b=base: s.call_app(b))
                        template = await capture(dsn, lambda s=scenario, b=base: s.call_app(b))
                        result = await run_floor(floor_pool, template, base, variants(), concurrency, args.duration)
                        seconds = result.duration_s
                        row["floor"] = {
                            "requests": result.requests, "errors": result.errors,
                            "rps": round(result.requests / seconds, 1), "p50_ms": percentile(result.latencies_us, 0.5),
                            "p95_ms": percentile(result.latencies_us, 0.95), "p99_ms": percentile(result.latencies_us, 0.99),
                            "client_cpu_s": round(result.cpu_s, 3), "statements": len(template),
                        }
                        if scenario.mode == "approve" and result.requests > row["floor_pool"]:
                            row["floor_note"] = "floor approve pool exhausted: later decisions matched no Pending row"
                        if scenario.name == "get_by_id":
                            estimated[("floor", concurrency)] = row["floor"]["rps"]
                        if row["floor"]["rps"]:
                            row["app_over_floor"] = round(row["app"]["rps"] / row["floor"]["rps"], 3)
                    if scenario.write:
                        row["cleaned_up"] = await cleanup_writes(dsn)
                    report["runs"].append(row)
                    app = row["app"]
                    log(f"  {scenario.name:22} c={concurrency:<3} {app['rps']:8.1f} rps  p95 {app['p95_ms']:7.1f} ms  "
                        f"errors {fmt_errors(app['errors'])}  app/floor {row.get('app_over_floor', '-')}")
        finally:
            await asyncio.to_thread(config.unlink, missing_ok=True)
            if floor_pool is not None:
                await floor_pool.close()
        if args.ceiling:
            report["ceiling"] = await measure_ceiling(report, scenarios, config, env, log_path, ctx, dsn, pool_size,
                                                      generator, args.duration)
        report["peak_rss_mb_at_100"] = max((r["app"]["peak_rss_mb"] for r in report["runs"] if r["concurrency"] == 100), default=None)
        report["peak_rss_mb_overall"] = round(rss_kib(server.pid, "VmHWM") / 1024, 1)
    finally:
        server.stop()
    report["server_log_warnings"] = _log_problems(log_path)
    if not args.keep_logs:
        log_path.unlink(missing_ok=True)
    return report


def _log_problems(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not path.exists():
        return counts
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            for level in ('"WARNING"', '"ERROR"', '"CRITICAL"', "Traceback"):
                if level in line:
                    counts[level.strip('"')] = counts.get(level.strip('"'), 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", default="10k", help="10k, 100k, 1m, smoke or a number of registrations")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 s runs, a few scenarios: proves the bench works")
    parser.add_argument("--duration", type=float, default=None, help="seconds per run (default 5; smoke 1)")
    parser.add_argument("--concurrency", default=None, help="comma-separated (default 1,32,100; smoke 1,32)")
    parser.add_argument("--scenarios", default=None, help="comma-separated subset of scenario names")
    parser.add_argument("--server-dsn", default=seeding.DEFAULT_SERVER_DSN, help="administrative DSN of the bench server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pool-size", type=int, default=None, help="DB_POOL_MAX_SIZE for the app and the floor (default: the app's)")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument("--cold-repeats", type=int, default=None)
    parser.add_argument("--python-loadgen", action="store_true", help="use bench.loadgen even when wrk is installed")
    parser.add_argument("--ceiling", action="store_true",
                        help="also serve bench.ceiling_app (the get_by_id query and nothing else) and drive it at c=32")
    parser.add_argument("--keep-logs", action="store_true", help="keep the serving process's log under bench/results/")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default bench/results/<size>-<time>.json)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration = args.duration or 1.0
        args.concurrency = args.concurrency or "1,32"
        args.scenarios = args.scenarios or "health,get_by_id,create,approve"
        args.cold_repeats = args.cold_repeats or 1
    args.duration = args.duration or 5.0
    args.concurrency = args.concurrency or "1,32,100"
    args.cold_repeats = args.cold_repeats or 5
    try:
        report = asyncio.run(run(args))
    except Exception:
        traceback.print_exc()
        print("bench: FAILED (the benchmark itself broke; see above)", file=sys.stderr)
        return 1
    print_table(report)
    output = args.output or RESULTS_DIR / f"{report['size']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0
