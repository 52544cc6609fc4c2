"""Per-request CPU of our own code, in-process: `uv run python -m bench.request_cost --size 1m`.

Issue 16's per-request target is judged over HTTP (`python -m bench --ceiling`), where the HTTP server, the load
generator and PostgreSQL share the machine with the app and runs vary with the load. This isolates the part we
can change: the same local host dispatch (`LocalFunctionsHost.handle`) of the app and of `bench.ceiling_app`
(the get_by_id query and nothing else), called in-process by `--concurrency` workers on one event loop, against
the bench database, logging at INFO to a file like the bench's server. Per scenario it prints the serving
process's CPU per request (µs, median of `--rounds`, app and ceiling rounds alternating) and ceiling CPU ÷ app CPU,
the throughput ratio a CPU-bound worker would reach. `--profile health|get_by_id` prints a cProfile of the app's
measured requests (cProfile inflates call-heavy code: use it to rank, the timings to decide).

The issuer for the app's tokens is a local host process started on a free port (signing keys are fetched once;
afterwards the caller cache answers, as in the HTTP bench's steady state).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import asyncpg

from bench import seed as seeding
from bench.run import Server, free_port, log, mint_tokens, server_env

Call = Callable[[], Awaitable[tuple[int, dict[str, str], bytes]]]


async def drive(call: Callable[[int], Call], requests: int, concurrency: int, expect: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for `requests` calls by `concurrency` workers; every answer must be `expect`."""
    counter = iter(range(requests))

    async def worker() -> None:
        for index in counter:
            status, _, body = await call(index)()
            if status != expect:
                raise RuntimeError(f"answer {status}: {body[:300]!r}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def measure(args: argparse.Namespace, work: Path, log_file: IO[str]) -> None:
    plan = seeding.plan_for(args.size)
    dsn = await seeding.seed(plan, args.server_dsn, log=log)
    conn = await asyncpg.connect(dsn)
    try:
        ids = [str(row["registration_id"]) for row in await conn.fetch(
            "SELECT registration_id FROM registrations TABLESAMPLE BERNOULLI($1) LIMIT 1000",
            min(100.0, 200_000.0 / max(plan.registrations, 1)),
        )]
    finally:
        await conn.close()

    env = server_env(dsn, args.pool_size)
    issuer = Server(free_port(), env, work / "issuer.log")
    issuer.start()
    try:
        await asyncio.to_thread(issuer.wait_listening)
        await run_in_process(args, env, ids, issuer.port, log_file)
    finally:
        issuer.stop()


async def run_in_process(
    args: argparse.Namespace, env: dict[str, str], ids: list[str], port: int, log_file: IO[str]
) -> None:
    os.environ.update(env)
    from devtools.local_host import build_host
    from devtools.local_setup import prepare_local_issuer
    from shared import db
    from shared.logs import configure_logging
    from shared.settings import clear_settings_cache

    prepare_local_issuer(port)
    clear_settings_cache()
    configure_logging(env["LOG_LEVEL"], stream=log_file)
    base_url = f"http://127.0.0.1:{port}"
    app = build_host(app_reference="function_app:app", base_url=base_url)
    ceiling = build_host(app_reference="bench.ceiling_app:app", base_url=base_url)
    token = mint_tokens()["users"][1]
    authorization = {"authorization": f"Bearer {token}", "host": "127.0.0.1"}

    def by_id(host: Any, headers: dict[str, str]) -> Callable[[int], Call]:
        return lambda i: lambda: host.handle("GET", f"/api/registrations/{ids[i % len(ids)]}", "", headers, b"", base_url)

    def health(i: int) -> Call:
        return lambda: app.handle("GET", "/api/health", "", {"host": "127.0.0.1"}, b"", base_url)

    scenarios: dict[str, Callable[[int], Call]] = {
        "ceiling": by_id(ceiling, {"host": "127.0.0.1"}),
        "health": health,
        "get_by_id": by_id(app, authorization),
    }
    try:
        for call in scenarios.values():  # statements prepared, callers cached, pool full
            await drive(call, max(args.concurrency * 20, 500), args.concurrency, 200)
        cpu_us: dict[str, list[float]] = {name: [] for name in scenarios}
        for _ in range(args.rounds):
            for name, call in scenarios.items():
                cpu, _ = await drive(call, args.requests, args.concurrency, 200)
                cpu_us[name].append(cpu / args.requests * 1e6)
        ceiling_us = statistics.median(cpu_us["ceiling"])
        print(f"\nCPU per request, µs (median of {args.rounds} rounds of {args.requests}, c={args.concurrency}):")
        for name, values in cpu_us.items():
            median = statistics.median(values)
            print(f"  {name:<10} {median:7.1f}  (rounds: {', '.join(f'{v:.0f}' for v in values)})"
                  f"  ceiling/this {ceiling_us / median:.2f}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await drive(scenarios[args.profile], args.requests, args.concurrency, 200)
            profiler.disable()
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats(args.sort).print_stats(args.top)
    finally:
        await db.close_pool()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cost", description=__doc__)
    parser.add_argument("--size", default="1m")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--profile", choices=("health", "get_by_id", "ceiling"), default=None)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--profile-out", default=None, help="also write the profile here (pstats format)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--server-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="request-cost-"))
    with open(work / "app.log", "a", encoding="utf-8") as log_file:
        asyncio.run(measure(args, work, log_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
