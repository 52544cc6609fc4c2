"""GET /api/health over real HTTP: 200 while the database answers, a fast 503 (never a 500, never a
hang) while it does not, and back to 200 when it returns."""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from devtools.embedded_db import server_dsn, start_embedded_server
from devtools.local_settings import ROOT
from tests.support.host import LocalHostProcess

ACQUIRE_TIMEOUT_S = 2.0
# Health must answer well within the acquire timeout plus a little; a poller's timeout is short.
ANSWER_WITHIN_S = ACQUIRE_TIMEOUT_S + 3.0


def _assert_unhealthy(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unhealthy" and body["database"] == "disconnected"
    datetime.fromisoformat(body["timestamp"])
    assert response.headers["retry-after"]
    assert elapsed < ANSWER_WITHIN_S, elapsed


def _timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


async def test_health_is_200_and_connected_while_the_database_answers(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "healthy" and body["database"] == "connected"
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None


async def test_health_needs_no_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/health", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200


def test_health_is_503_when_nothing_listens_on_the_database_port(
    start_host: Callable[..., LocalHostProcess], unused_tcp_port: int
) -> None:
    host = start_host(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/postgres",
        DB_ACQUIRE_TIMEOUT_S=str(ACQUIRE_TIMEOUT_S),
    )
    with httpx.Client(base_url=host.base_url, timeout=30.0) as client:
        for _ in range(3):
            _assert_unhealthy(*_timed_get(client, "/api/health"))
    assert "Traceback" not in host.logs()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections but never says a word (a hung or black-holed database)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def test_health_is_503_not_a_hang_when_the_database_never_answers(
    start_host: Callable[..., LocalHostProcess], silent_server: int
) -> None:
    host = start_host(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{silent_server}/postgres",
        DB_ACQUIRE_TIMEOUT_S="1",
    )
    with httpx.Client(base_url=host.base_url, timeout=30.0) as client:
        _assert_unhealthy(*_timed_get(client, "/api/health"))


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A throwaway cluster folder under .local/ (not pytest's tmp dir: the server runs as another user
    and needs the folder's parents to stay traversable, which any concurrent pytest session resets)."""
    path = ROOT / ".local" / "test-clusters" / uuid.uuid4().hex[:12]
    path.parent.mkdir(parents=True, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_health_follows_a_database_that_stops_and_starts_again(
    start_host: Callable[..., LocalHostProcess], cluster_dir: Path
) -> None:
    data_dir = cluster_dir
    server = start_embedded_server(data_dir)
    try:
        dsn = server_dsn(server)
        host = start_host(DATABASE_URL=dsn, DB_ACQUIRE_TIMEOUT_S=str(ACQUIRE_TIMEOUT_S))
        with httpx.Client(base_url=host.base_url, timeout=30.0) as client:
            # Warm the pool so that the stop hits connections the pool already holds.
            assert client.get("/api/health").status_code == 200
            assert client.get("/api/health").status_code == 200

            server.cleanup()  # pg_ctl stop: this process holds the only handle
            for _ in range(3):
                _assert_unhealthy(*_timed_get(client, "/api/health"))

            server = start_embedded_server(data_dir)
            assert server_dsn(server) == dsn
            deadline = time.monotonic() + 15
            while (status := client.get("/api/health").status_code) != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert status == 200
        assert "Traceback" not in host.logs()
    finally:
        server.cleanup()
