"""A lean asyncio HTTP/1.1 load generator: the fallback when `wrk` is not installed (e.g. a fresh CI box).

Reads the same config file as bench/wrk.lua (BENCH_WRK_CONFIG), keeps `--connections` keep-alive
connections busy for `--duration` seconds against 127.0.0.1, and prints the same "BENCHJSON {...}" line.
Run by the driver as a separate process: `python -m bench.loadgen --port N --connections C --duration S`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time


def load_config(path: str) -> tuple[str, str, list[str], list[str]]:
    mode, nonce, tokens, items = "get", "x", [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.rstrip("\n").partition("\t")
            if key == "mode":
                mode = value
            elif key == "nonce":
                nonce = value
            elif key == "token":
                tokens.append(value)
            elif key == "item":
                items.append(value)
    return mode, nonce, tokens, items


CREATE_BODY = (
    '{{"endpoint_url":"https://bench-w-create-{nonce}-{worker}-{n}.example.net/mcp",'
    '"endpoint_name":"Bench Created Server {n}","description":"Registered by the benchmark load generator.",'
    '"owner_contact":"bench@example.com","available_tools":[{{"name":"search_issues","description":"Search issues"}},'
    '{{"name":"get_issue","version":"1.0"}}]}}'
)
DECISION = b'{"status":"Approved","reason":"approved by the benchmark"}'


class Generator:
    def __init__(self, port: int, mode: str, nonce: str, tokens: list[str], items: list[str]) -> None:
        self.port, self.mode, self.nonce, self.tokens, self.items = port, mode, nonce, tokens, items
        self.counter = 0
        self.latencies: list[int] = []
        self.statuses: dict[str, int] = {}
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        self.bytes = 0

    def next_request(self, worker: int) -> bytes:
        self.counter += 1
        n = self.counter
        head = f"Host: 127.0.0.1:{self.port}\r\n"
        if self.tokens:
            head += f"Authorization: Bearer {self.tokens[n % len(self.tokens)]}\r\n"
        if self.mode == "create":
            body = CREATE_BODY.format(nonce=self.nonce, worker=worker, n=n).encode()
            line = "POST /api/registrations"
        elif self.mode == "approve":
            body = DECISION
            line = f"PATCH /api/registrations/{self.items[(n - 1) % len(self.items)]}/status"
        else:
            body = b""
            line = f"GET {self.items[(n - 1) % len(self.items)]}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return f"{line} HTTP/1.1\r\n{head}\r\n".encode() + body

    async def worker(self, index: int, deadline: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.errors["connect"] += 1
            return
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    writer.write(self.next_request(index))
                    await writer.drain()
                except OSError:
                    self.errors["write"] += 1
                    return
                try:
                    status, size = await asyncio.wait_for(read_response(reader), timeout=30)
                except TimeoutError:
                    self.errors["timeout"] += 1
                    return
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    self.errors["read"] += 1
                    return
                self.latencies.append(int((time.perf_counter() - started) * 1_000_000))
                self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
                self.bytes += size
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    size = len(head)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length:
            await reader.readexactly(length)
        size += length
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            chunk_head = await reader.readuntil(b"\r\n")
            length = int(chunk_head.split(b";", 1)[0], 16)
            await reader.readexactly(length + 2)
            size += length
            if length == 0:
                break
    return status, size


def percentile(sorted_values: list[int], fraction: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(port: int, connections: int, duration: float, config: str) -> dict[str, object]:
    generator = Generator(port, *load_config(config))
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(generator.worker(index, deadline) for index in range(connections)))
    elapsed = time.perf_counter() - started
    values = sorted(generator.latencies)
    non_ok = sum(count for status, count in generator.statuses.items() if not status.startswith(("2", "3")))
    return {
        "requests": len(values),
        "duration_us": int(elapsed * 1_000_000),
        "bytes": generator.bytes,
        "socket_errors": generator.errors,
        "non_2xx_3xx": non_ok,
        "statuses": generator.statuses,
        "latency_us": {
            "min": values[0] if values else 0,
            "max": values[-1] if values else 0,
            "mean": sum(values) / len(values) if values else 0.0,
            "p50": percentile(values, 0.50),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.port, args.connections, args.duration, os.environ["BENCH_WRK_CONFIG"]))
    print("BENCHJSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
