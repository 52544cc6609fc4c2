"""Start the project's local Functions host (`python -m devtools.local_host`) as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.issuer import ADMIN_ROLE, CLIENT_ID, TENANT_ID, TestIssuer
from tests.support.pgbouncer import host_settings as pgbouncer_host_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalHostProcess:
    def __init__(
        self, env: dict[str, str], *, cors: str | None = None, log_path: Path, app: str | None = None
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        args = [sys.executable, "-m", "devtools.local_host", "--port", str(self.port)]
        if cors is not None:
            args += ["--cors", cors]
        if app is not None:
            args += ["--app", app]
        full_env = {key: value for key, value in os.environ.items() if not key.startswith(("ENTRA_", "DB_", "EASYAUTH", "WEBSITE_AUTH"))}
        # Through PgBouncer every host runs without asyncpg's statement cache (unless a test says otherwise).
        full_env.update(pgbouncer_host_settings())
        full_env.update(env)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_listening()

    def _wait_until_listening(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"local host exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                httpx.get(f"{self.base_url}/__ready", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"local host did not start: {self.log_path.read_text()[-3000:]}")

    def client(self, *, timeout: float = 30.0, **options: Any) -> httpx.AsyncClient:
        """An HTTP client for this host (close it: `async with host.client() as client:`)."""
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout, **options)

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def host_environment(database_url: str, issuer: TestIssuer, **overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "DB_SSL": "disable",
        **pgbouncer_host_settings(),
        "ENTRA_TENANT_ID": TENANT_ID,
        "ENTRA_CLIENT_ID": CLIENT_ID,
        "ENTRA_ADMIN_ROLE": ADMIN_ROLE,
        "ENTRA_OPENID_CONFIG_URL": issuer.openid_config_url,
        "JWKS_UNKNOWN_KID_COOLDOWN_S": "0",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env
