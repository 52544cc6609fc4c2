"""A raw HTTP peer on loopback, run as its own process, that records every TCP connection it accepts:
`python -m tests.support.http_peer --port P --mode MODE --log FILE --ready FILE [--location URL] [--size N]`.

Modes (what it answers to any request):
- `html`: 200 with an HTML page;
- `unauthorized`: 401 with `WWW-Authenticate: Bearer resource_metadata="<location>"`;
- `basic`: 401 with `WWW-Authenticate: Basic realm="intranet"` (not an MCP authorization challenge);
- `silent`: accepts and reads, never answers;
- `oversized`: 200 `application/json` of `--size` bytes;
- `redirect`: 307 to `--location`.

Each accepted connection appends one line to `--log` before anything is read, so a test can prove that a
probe never reached it (after a positive sentinel: a connection of the test's own is recorded).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

HTML = b"<!doctype html><html><head><title>Welcome</title></head><body><h1>Hello</h1></body></html>"


def response(mode: str, location: str, size: int) -> bytes:
    if mode == "html":
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {len(HTML)}\r\n"
        return head.encode() + b"connection: close\r\n\r\n" + HTML
    if mode == "unauthorized":
        body = b'{"error":"invalid_token"}'
        head = (
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
            f'www-authenticate: Bearer error="invalid_token", resource_metadata="{location}"\r\n'
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        return head.encode() + body
    if mode == "basic":
        head = 'HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm="intranet"\r\ncontent-length: 0\r\n'
        return head.encode() + b"connection: close\r\n\r\n"
    if mode == "redirect":
        return f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
    if mode == "oversized":
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
        return head.encode() + b"[" + b" " * (size - 2) + b"]"
    raise ValueError(mode)


async def serve(port: int, mode: str, log: Path, location: str, size: int, ready: Path) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with log.open("a") as file:
            file.write(f"connection from {writer.get_extra_info('peername')}\n")
        try:
            await reader.readuntil(b"\r\n\r\n")
            if mode == "silent":
                await reader.read()  # until the client gives up
                return
            writer.write(response(mode, location, size))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    # Ready without a connection of its own, which the log would count.
    await asyncio.to_thread(ready.write_text, "listening")
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["html", "unauthorized", "basic", "silent", "oversized", "redirect"], required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--location", default="")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.mode, args.log, args.location, args.size, args.ready))


if __name__ == "__main__":
    main()
