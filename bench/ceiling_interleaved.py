"""Issue 16's per-request target with the runs interleaved: `uv run python -m bench.ceiling_interleaved --size 1m`.

`python -m bench --ceiling` measures the app's scenarios first and the ceiling (bench/ceiling_app.py: the get_by_id
query behind the same local host and nothing else) a minute later, in a server started afterwards. On this shared
2-core machine the load changes within that minute, and one pair of 5-second runs moved the get_by_id ratio by
±0.1 between consecutive invocations. Here the app and the ceiling serve side by side (an idle server costs
nothing), and short wrk runs at c=32 rotate through app health, app get_by_id and ceiling get_by_id for `--rounds`
rounds; each round's ratios compare runs seconds apart. It prints the median ratio (and range) and the serving
process's CPU per request. Same scenarios, tokens, warm-up and wrk script as `python -m bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

from bench import run as bench
from bench import seed as seeding

CONCURRENCY = 32


async def measure(args: argparse.Namespace) -> None:
    plan = seeding.plan_for(args.size)
    dsn = await seeding.seed(plan, args.server_dsn, log=bench.log)
    env = bench.server_env(dsn, None)
    for name in bench.SCRUBBED:
        os.environ.pop(name, None)
    os.environ["DATABASE_URL"] = dsn
    from shared.settings import clear_settings_cache, get_database_settings

    clear_settings_cache()
    pool_size = get_database_settings().pool_max_size  # the warm-up's concurrency, as in `python -m bench`
    work = Path(tempfile.mkdtemp(prefix="bench-interleaved-"))
    app = bench.Server(bench.free_port(), env, work / "app.log")
    ceiling = bench.Server(bench.free_port(), env, work / "ceiling.log", app="bench.ceiling_app:app")
    app.start()
    ceiling.start()
    try:
        await asyncio.to_thread(app.wait_listening)
        await asyncio.to_thread(ceiling.wait_listening)
        tokens = bench.mint_tokens()
        ctx = await bench.sample_context(dsn, plan, tokens)
        for token in tokens["users"]:
            status, body, _ = await asyncio.to_thread(bench.http_request, app.port, "GET", "/api/users/me", token)
            if status != 200:
                raise RuntimeError(f"sign-in failed: {status} {body[:300]!r}")
        scenarios = {scenario.name: scenario for scenario in bench.build_scenarios(ctx)}
        targets = [
            ("health", app, scenarios["health"], []),
            ("get_by_id", app, scenarios["get_by_id"], tokens["users"]),
            ("ceiling", ceiling, scenarios["get_by_id"], []),
        ]
        config = work / "wrk.conf"
        for _, server, scenario, scenario_tokens in targets:
            await bench.warm_up(server, config, scenario, scenario_tokens, ctx, dsn, pool_size, "wrk")
        rps: dict[str, list[float]] = {name: [] for name, *_ in targets}
        cpu_us: dict[str, list[float]] = {name: [] for name, *_ in targets}
        for round_number in range(args.rounds):
            shift = round_number % len(targets)  # each target runs first, second and third equally often
            for name, server, scenario, scenario_tokens in targets[shift:] + targets[:shift]:
                bench.write_wrk_config(config, scenario, scenario_tokens, scenario.items, f"{ctx.nonce}{name}{round_number}")
                raw = await bench.run_load(server.port, config, CONCURRENCY, args.duration, server.pid, "wrk")
                result = bench.summarize_http(raw, scenario.expect)
                if result["errors"]:
                    raise RuntimeError(f"{name}: errors {result['errors']}")
                rps[name].append(result["rps"])
                cpu_us[name].append(raw["cpu"]["server_s"] / result["requests"] * 1e6)
        load = os.getloadavg()[0]
        print(f"{args.rounds} rounds of {args.duration:g} s at c={CONCURRENCY}, load average after {load:.2f}")
        for name in rps:
            ratios = [value / ceiling_rps for value, ceiling_rps in zip(rps[name], rps["ceiling"], strict=True)]
            print(f"  {name:<10} {statistics.median(rps[name]):7.0f} rps  {statistics.median(cpu_us[name]):5.0f} µs CPU/request"
                  f"  ÷ ceiling: median {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}–{max(ratios):.2f})")
    finally:
        app.stop()
        ceiling.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_interleaved", description=__doc__)
    parser.add_argument("--size", default="1m")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument("--server-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(measure(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
