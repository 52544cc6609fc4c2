"""Hostile request paths against log redaction (issue 14, item 1). Not a test: it prints what it measures.

    uv run python -m bench.hostile_paths [--server-dsn DSN] [--rounds 5]

1. In-process: the time to filter and format one access record whose message and `route` are the issue's
   path `/api/v0.1/servers/x://a.a.a.…!` (8, 16, 24 KB), median of 20, and the time of `redact()` on the
   whole path (no cap; linear). Before the fix: 1.5 s, 5.6 s, 10.1 s per request (the issue's numbers; the
   line was redacted three times).
2. Over HTTP against `python -m devtools.local_host`: `/api/health` alone, then sent while ten 8 KB hostile
   requests are in flight (before the fix: 12.3 s).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.run import ROOT, Server, free_port, http_request
from shared.logs import RequestContextFilter, json_formatter, request_fields
from shared.redaction import redact


def hostile_path(size: int) -> str:
    return "/api/v0.1/servers/x://" + "a." * (size // 2) + "!"


def format_time_ms(path: str, repeats: int = 20) -> float:
    """Median milliseconds to filter and format the access record of a request to `path`."""
    logger = logging.getLogger("mcp_registry.access")
    formatter, record_filter = json_formatter(), RequestContextFilter()
    timings = []
    for _ in range(repeats):
        token = request_fields.set({"invocation_id": "bench", "function": "registry_servers", "route": path})
        try:
            started = time.perf_counter()
            record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "%s %s %s", ("GET", path, 404), None)
            record_filter.filter(record)
            formatter.format(record)
            timings.append((time.perf_counter() - started) * 1000)
        finally:
            request_fields.reset(token)
    return statistics.median(timings)


def redact_time_ms(text: str, repeats: int = 20) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        redact(text)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def health_under_attack_s(port: int, hostile: int) -> float:
    """Seconds /api/health takes when sent just after `hostile` 8 KB hostile requests."""
    threads = [
        threading.Thread(target=http_request, args=(port, "GET", hostile_path(8 * 1024))) for _ in range(hostile)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # the hostile requests reach the server first
    status, _, elapsed = http_request(port, "GET", "/api/health")
    for thread in threads:
        thread.join()
    if status != 200:
        raise RuntimeError(f"health answered {status}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_paths", description=__doc__)
    parser.add_argument("--server-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    print("in-process, median of 20: one access record (filter + JSON formatter); redact() on the whole path")
    for size in (8 * 1024, 16 * 1024, 24 * 1024, 1024 * 1024):
        path = hostile_path(size)
        print(f"  {size // 1024:>4} KB path: {format_time_ms(path):.3f} ms; redact(): {redact_time_ms(path):.3f} ms")

    log_path = Path(ROOT / ".local" / "bench-hostile-paths.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": args.server_dsn, "DB_SSL": "disable", "LOG_LEVEL": "INFO"}
    server = Server(free_port(), env, log_path)
    server.start()
    try:
        server.wait_listening()
        http_request(server.port, "GET", "/api/health")  # the pool, opened
        alone = [http_request(server.port, "GET", "/api/health")[2] for _ in range(args.rounds)]
        attacked = [health_under_attack_s(server.port, 10) for _ in range(args.rounds)]
    finally:
        server.stop()
    print(f"over HTTP, /api/health, {args.rounds} rounds (max):")
    print(f"  alone: {max(alone) * 1000:.1f} ms")
    print(f"  sent after 10 parallel 8 KB hostile requests: {max(attacked) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
