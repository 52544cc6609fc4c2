"""The probe's network peers for tests, each a real process on loopback: MCP servers built with the SDK
(tests/support/mcp_server.py) and raw HTTP peers that record every connection (tests/support/http_peer.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.host import ROOT, free_port

THREE_TOOLS = [
    {"name": "get_forecast", "description": "Forecast for a city"},
    {"name": "get_alerts", "description": "Weather alerts for a city"},
    {"name": "get_history", "description": "Past weather of a city"},
]


def many_tools(count: int) -> list[dict[str, str]]:
    return [{"name": f"tool_{index:03d}", "description": f"Tool number {index}"} for index in range(count)]


@dataclass
class Peer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    output: Path
    path: str = "/"
    args: list[str] = field(default_factory=list)

    def url(self, path: str | None = None, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{self.path if path is None else path}"

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def requests(self) -> list[dict[str, Any]]:
        """The HTTP requests an MCP server logged (one JSON object each)."""
        return [json.loads(line) for line in self.log_lines()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(args: list[str], directory: Path) -> tuple[subprocess.Popen[bytes], Path]:
    output = directory / f"peer-{uuid.uuid4().hex[:8]}.out"
    with output.open("wb") as out:
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return process, output


def _wait(process: subprocess.Popen[bytes], output: Path, ready: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"peer exited with {process.returncode}: {output.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"peer did not start: {output.read_text()[-3000:]}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_mcp_server(
    directory: Path,
    tools: list[dict[str, str]],
    *,
    transport: str = "streamable-http",
    page_size: int | None = None,
    delay_s: float = 0.0,
    port: int | None = None,
    log: Path | None = None,
) -> Peer:
    """An MCP server (the SDK's MCPServer) with these tools; `port` and `log` to restart one in place."""
    port = port or free_port()
    tools_file = directory / f"tools-{uuid.uuid4().hex[:8]}.json"
    tools_file.write_text(json.dumps(tools))
    log = log or directory / f"mcp-{uuid.uuid4().hex[:8]}.log"
    args = ["-m", "tests.support.mcp_server", "--port", str(port), "--transport", transport]
    args += ["--tools", str(tools_file), "--log", str(log), "--delay-s", str(delay_s)]
    if page_size is not None:
        args += ["--page-size", str(page_size)]
    process, output = _start(args, directory)
    _wait(process, output, lambda: _accepts(port))
    return Peer(port, process, log, output, path="/sse" if transport == "sse" else "/mcp", args=args)


def start_http_peer(directory: Path, mode: str, *, location: str = "", size: int = 0) -> Peer:
    """A raw HTTP peer answering in `mode` and recording every connection it accepts."""
    port = free_port()
    log = directory / f"peer-{uuid.uuid4().hex[:8]}.log"
    ready = directory / f"peer-{uuid.uuid4().hex[:8]}.ready"
    args = ["-m", "tests.support.http_peer", "--port", str(port), "--mode", mode, "--log", str(log)]
    args += ["--ready", str(ready), "--location", location, "--size", str(size)]
    process, output = _start(args, directory)
    _wait(process, output, ready.exists)
    return Peer(port, process, log, output, path="/mcp", args=args)


def connect_once(peer: Peer) -> None:
    """A connection of the test's own: the positive sentinel that the peer records connections."""
    with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: sentinel\r\n\r\n")
        sock.settimeout(2)
        try:
            sock.recv(1)
        except OSError:
            pass  # a silent peer never answers
    deadline = time.monotonic() + 5
    while not peer.log_lines() and time.monotonic() < deadline:
        time.sleep(0.02)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()
