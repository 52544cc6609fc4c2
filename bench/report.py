"""Markdown tables from result files: `uv run python -m bench.report bench/results/10k-*.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "0"


def _db_cpu_ms(app: dict[str, Any]) -> str:
    database = app.get("database") or {}
    return f"{1000 * database['app_backend_cpu_s'] / app['requests']:.2f}" if database and app["requests"] else "-"


def _lock_wait(app: dict[str, Any]) -> str:
    database = app.get("database") or {}
    share = database.get("lock_wait_share_of_busy")
    if share is None and database.get("lock_wait_share") is not None:
        return f"{100 * database['lock_wait_share']:.1f}% of all"  # results written before the busy share existed
    return f"{100 * share:.1f}%" if share is not None else "-"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"### {report['size']} ({report['registrations']:,} registrations)",
        "",
        f"commit `{report['git']['commit']}`; generator {report['generator']}; {report['duration_s']:g} s per run; "
        f"pool {report.get('pool_max_size')}; list pages limit {report['list_limit']}",
        "",
        "| scenario | c | requests | errors | RPS | p50 ms | p95 ms | p99 ms | floor RPS | floor p95 | app/floor "
        "| gen CPU | server CPU | machine busy | load | rt/req | tx/req | DB CPU ms/req | lock wait |",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in report["runs"]:
        app, floor = row["app"], row.get("floor") or {}
        cpu = app["cpu"]
        wall = cpu["wall_s"] or 1
        rt = report["round_trips"].get(row["scenario"], {})
        ratio = row.get("app_over_floor")
        lines.append(
            f"| {row['scenario']} | {row['concurrency']} | {app['requests']} | {_errors(app['errors'])} | {app['rps']:.0f} "
            f"| {app['p50_ms']:.1f} | {app['p95_ms']:.1f} | {app['p99_ms']:.1f} | {floor.get('rps', 0):.0f} "
            f"| {floor.get('p95_ms', 0):.1f} | {f'{ratio:.2f}' if ratio is not None else '-'} "
            f"| {100 * cpu['generator_s'] / wall:.0f}% | {100 * cpu['server_s'] / wall:.0f}% "
            f"| {cpu['machine_busy_s'] / wall:.2f} | {cpu.get('loadavg_1m_after', 0):.1f} "
            f"| {rt.get('round_trips_per_request', '-')} | {rt.get('idle_round_trips_per_request', '-')} "
            f"| {_db_cpu_ms(app)} | {_lock_wait(app)} |"
        )
    cold = report.get("cold_start") or {}
    imports = cold.get("imports", {})
    first = cold.get("first_request", {})
    lines.append("")
    if imports:
        parts = [f"{label.replace('_', ' ')}: median {v['import_ms_median']} ms (min {v['import_ms_min']})"
                 for label, v in imports.items()]
        lines.append("`import function_app` — " + "; ".join(parts) + ".")
    if first:
        lines.append(
            f"First authenticated request after start: median {first['first_request_ms_median']} ms, second "
            f"{first['second_request_ms_median']} ms (spawn → listening {first['spawn_to_listening_s_median']} s)."
        )
    lines.append(
        f"Peak RSS of the serving process: {report.get('peak_rss_mb_at_100')} MB in the 100-concurrency runs, "
        f"{report.get('peak_rss_mb_overall')} MB over the whole run."
    )
    ceiling = report.get("ceiling")
    if ceiling:
        lines.append(
            f"Ceiling (`--ceiling`: `bench.ceiling_app`, the get_by_id query and nothing else, behind the same local "
            f"host) at c={ceiling['concurrency']}: {ceiling['app']['rps']:.0f} RPS, p95 {ceiling['app']['p95_ms']:.1f} ms, "
            f"ceiling/floor {ceiling.get('ceiling_over_floor', '-')}."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    for name in sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text())))


if __name__ == "__main__":
    main()
