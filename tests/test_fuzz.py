"""Property-based fuzzing of the whole API with Schemathesis, from the app's own OpenAPI document.

A local host on its own fresh database, real tokens from the test issuer, and the Schemathesis CLI run
twice — once as an admin, once as a plain user — over every operation with every phase (examples,
boundary coverage, random fuzzing, and stateful sequences through the document's links: create → get →
patch → status → delete) and every check, including no 5xx, responses that conform to the documented
schemas, status codes and headers, and the 2 s response-time limit.

Bounded for CI by FUZZ_MAX_EXAMPLES (examples per operation, default 8). The longer run is the same test:
    FUZZ_MAX_EXAMPLES=200 uv run pytest tests/test_fuzz.py -s --timeout 3600
Reports (JUnit, NDJSON events) go to FUZZ_REPORT_DIR when set, else to pytest's tmp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import create_migrated_database, drop_database
from tests.support.host import LocalHostProcess

CONFIG = Path(__file__).parent / "fuzz" / "schemathesis.toml"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
SEED = os.environ.get("FUZZ_SEED", "20261126")
MAX_RESPONSE_TIME_S = 2
RUN_TIMEOUT_S = int(os.environ.get("FUZZ_RUN_TIMEOUT_S", str(max(600, MAX_EXAMPLES * 60))))

pytestmark = pytest.mark.timeout(2 * RUN_TIMEOUT_S + 120)


@pytest.fixture
async def fuzz_database(pg_server_dsn: str) -> AsyncIterator[str]:
    """A database of its own: the fuzzer creates, approves and deletes freely without touching others' data."""
    dsn = await create_migrated_database(pg_server_dsn, prefix="mcpreg_fuzz")
    yield dsn
    await drop_database(pg_server_dsn, dsn)


def report_dir(tmp_path: Path) -> Path:
    explicit = os.environ.get("FUZZ_REPORT_DIR")
    directory = Path(explicit) if explicit else tmp_path / "schemathesis"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def schemathesis_run(host: LocalHostProcess, token: str, identity: str, reports: Path) -> tuple[int, str, Path]:
    ndjson = reports / f"{identity}.ndjson"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{host.base_url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-response-time",
        str(MAX_RESPONSE_TIME_S),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "too_slow,filter_too_much",
        "--continue-on-failure",
        "--report",
        "junit,ndjson",
        "--report-junit-path",
        str(reports / f"{identity}.junit.xml"),
        "--report-ndjson-path",
        str(ndjson),
        "--no-color",
        "--output-sanitize",
        "true",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1", "COLUMNS": "200"}
    completed = subprocess.run(
        # In the report directory: Schemathesis keeps its crash cache (for `st replay`) under the cwd.
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, check=False, cwd=reports
    )
    output = completed.stdout + completed.stderr
    (reports / f"{identity}.txt").write_text(output, encoding="utf-8")
    return completed.returncode, output, ndjson


def request_count(ndjson: Path) -> int:
    """Requests actually sent, counted from the run's own event log (each scenario step is one request)."""
    count = 0
    for line in ndjson.read_text(encoding="utf-8").splitlines():
        event: dict[str, Any] = json.loads(line)
        for name, payload in event.items():
            if name == "ScenarioFinished" and isinstance(payload, dict):
                recorder = payload.get("recorder", {})
                count += len(recorder.get("interactions", {}))
    return count


def test_schemathesis_finds_no_failure_as_admin_or_as_user(
    start_host: Callable[..., LocalHostProcess],
    fuzz_database: str,
    user_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    # Probes of whatever the fuzzer registers end quickly, and never on loopback (the host itself).
    host = start_host(
        DATABASE_URL=fuzz_database, PROBE_ALLOW_LOOPBACK="false", PROBE_TIMEOUT_S="2", PROBE_CONNECT_TIMEOUT_S="1"
    )
    reports = report_dir(tmp_path)
    results = {}
    for identity, token in (("admin", user_token(admin=True)), ("user", user_token())):
        code, output, ndjson = schemathesis_run(host, token, identity, reports)
        results[identity] = (code, request_count(ndjson), output)
        print(f"\n--- schemathesis as {identity}: exit {code}, {results[identity][1]} requests ---")
        print(output[-6000:])
    failed = {identity: output[-20000:] for identity, (code, _, output) in results.items() if code != 0}
    assert not failed, "\n\n".join(f"== as {identity} ==\n{output}" for identity, output in failed.items())
    # Every operation was exercised (a run that reached nothing would also exit 0).
    assert all(count > 50 for _, count, _ in results.values()), {k: v[1] for k, v in results.items()}
