"""Structured logs over real HTTP: one JSON object per line, one access line per request with the request's
fields, LOG_LEVEL honoured, an unexpected error logged once under the invocation id its 500 repeats, and no
token or secret anywhere in a whole run's log output (redaction filter as defence in depth, unit-checked too)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import random
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import logs
from shared.logs import MAX_TEXT_CHARS, MAX_TRACE_CHARS, TRUNCATED, RequestContextFilter, json_formatter, request_fields
from shared.redaction import REDACTED, redact
from tests.support.databases import create_migrated_database, drop_database
from tests.support.host import ROOT, LocalHostProcess
from tests.support.issuer import TENANT_ID, TestIssuer, bearer
from tests.support.registrations import registration_body, unique_url

HostFactory = Callable[..., LocalHostProcess]

REQUIRED_FIELDS = {"timestamp", "level", "logger", "message"}
REQUEST_FIELDS = {"invocation_id", "function", "method", "route", "status", "duration_ms"}


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def log_records(host: LocalHostProcess) -> list[dict[str, Any]]:
    """Every line the host wrote, as a JSON object (fails on any line that is not one)."""
    records = []
    for line in host.logs().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert REQUIRED_FIELDS <= record.keys(), line
        records.append(record)
    return records


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["logger"] == "mcp_registry.access"]


async def send_not_http(host: LocalHostProcess) -> None:
    """Bytes that are not HTTP at all: uvicorn answers 400 itself and logs a WARNING ("Invalid HTTP request
    received."), a line that appears at any log level."""
    reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    answer = await reader.read(1024)
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 400")


def has_server_warning(records: list[dict[str, Any]]) -> bool:
    return any(record["logger"].startswith("uvicorn") and record["level"] == "WARNING" for record in records)


async def wait_for_lines(
    host: LocalHostProcess, predicate: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    # The host writes the line before it sends the response, but give the file a moment to be flushed.
    deadline = time.monotonic() + 10
    while True:
        records = log_records(host)
        if predicate(records) or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.05)




# ---------------------------------------------------------------- redaction, in-process


SECRET_SAMPLES = [
    ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxIn0.c2lnbmF0dXJlLXBhcnQ", "c2lnbmF0dXJlLXBhcnQ"),
    ("{'authorization': 'Bearer abcdefghijklmnopqrstuvwxyz'}", "abcdefghijklmnopqrstuvwxyz"),
    ("dsn postgresql://app:Sup3r-Secret@db.example.com:5432/registry", "Sup3r-Secret"),
    ("host=db user=app password=Sup3r-Secret dbname=registry", "Sup3r-Secret"),
    ('{"password": "Sup3r-Secret"}', "Sup3r-Secret"),
    ("x-ms-client-principal: eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119", "eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119"),
    ("a bare principal blob eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119 in text", "eyJhdXRoX3R5cCI6ImFhZCIsImNsYWltcyI6W119"),
    ("token eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxIn0.c2lnbmF0dXJlLXBhcnQ alone", "eyJvaWQiOiIxIn0"),
]


@pytest.mark.parametrize(("text", "secret"), SECRET_SAMPLES)
def test_redaction_removes_credentials(text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/registrations 200",
        "password authentication failed for user \"app\"",
        "request failed: DATABASE_UNAVAILABLE (ConnectionRefusedError: [Errno 111] Connect call failed)",
        "postgresql://app@db.example.com:5432/registry",
    ],
)
def test_redaction_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_the_filter_redacts_arguments_fields_and_exception_text_and_adds_request_fields() -> None:
    record_logger = logging.getLogger("mcp_registry.test_logging")
    token = request_fields.set({"invocation_id": "inv-1", "route": "/api/x"})
    try:
        try:
            raise ValueError("password=Sup3r-Secret")
        except ValueError:
            record = record_logger.makeRecord(
                record_logger.name,
                logging.ERROR,
                __file__,
                1,
                "failed for %s",
                ("Bearer abcdefghijklmnopqrstuvwxyz",),
                exc_info=__import__("sys").exc_info(),
                extra={"dsn": "postgresql://app:Sup3r-Secret@db/registry"},
            )
        assert RequestContextFilter().filter(record)
    finally:
        request_fields.reset(token)
    line = json_formatter().format(record)
    assert "Sup3r-Secret" not in line and "abcdefghijklmnopqrstuvwxyz" not in line
    parsed = json.loads(line)
    assert parsed["invocation_id"] == "inv-1" and parsed["route"] == "/api/x"
    assert parsed["level"] == "ERROR" and parsed["logger"] == "mcp_registry.test_logging"
    assert "ValueError" in parsed["exc_info"]


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    return logging.getLogger("mcp_registry.test_logging").makeRecord(
        "mcp_registry.test_logging", logging.INFO, __file__, 1, message, args, exc_info=None, extra=extra
    )


HOSTILE_PATH = "/api/v0.1/servers/x://" + "a." * 8 * 1024 + "!"


def test_a_long_message_and_field_are_cut_to_the_cap_with_a_marker() -> None:
    record = _record("GET %s 404", HOSTILE_PATH, route=HOSTILE_PATH)
    RequestContextFilter().filter(record)
    parsed = json.loads(json_formatter().format(record))

    for text in (parsed["message"], parsed["route"]):
        assert len(text) <= MAX_TEXT_CHARS + len(TRUNCATED)
        assert re.search(r"…\[truncated \d+ chars\]$", text), text[-40:]
    assert parsed["route"].startswith("/api/v0.1/servers/x://")


def test_a_secret_cut_by_the_cap_is_dropped_not_left_half_visible() -> None:
    for secret_text in ("password=Sup3r-Secret-Value", "postgresql://app:Sup3r-Secret-Value@db/registry"):
        message = "x" * (MAX_TEXT_CHARS - 12) + " " + secret_text
        record = _record("%s", message)
        RequestContextFilter().filter(record)
        line = json_formatter().format(record)
        assert "Sup3r" not in line and "truncated" in line


def test_a_long_traceback_keeps_its_tail_redacted() -> None:
    try:
        raise ValueError("x" * 40_000 + " password=Sup3r-Secret")
    except ValueError:
        record = logging.getLogger("mcp_registry.test_logging").makeRecord(
            "mcp_registry.test_logging", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )
    RequestContextFilter().filter(record)
    exc_info = json.loads(json_formatter().format(record))["exc_info"]

    assert exc_info.startswith("…[truncated") and len(exc_info) <= MAX_TRACE_CHARS + len(TRUNCATED) + 1
    assert exc_info.rstrip().endswith(f"password={REDACTED}")


def test_a_record_is_redacted_once_however_many_handlers_format_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting_redact(text: str) -> str:
        calls.append(text)
        return redact(text)

    monkeypatch.setattr(logs, "redact", counting_redact)
    token = request_fields.set({"invocation_id": "inv-1", "route": HOSTILE_PATH, "client": "cli-1"})
    try:
        record = _record("GET %s 404", HOSTILE_PATH, status=404)
        for _ in range(3):  # the local stdout handler, the Azure Monitor handler, a worker's handler
            RequestContextFilter().filter(record)
            json_formatter().format(record)
            logs.HostForwardingFormatter(None).format(record)
    finally:
        request_fields.reset(token)
    # The message and the two string fields of unknown origin, once each (the invocation id is a trusted field);
    # the rendered lines are not redacted again.
    assert len(calls) == 3
    assert sorted(text[:8] for text in calls) == ["/api/v0.", "GET /api", "cli-1"]


ACCESS_CASES = [
    ("GET", "/api/registrations/0b1a2c3d-1111-4222-8333-444455556666"),
    ("GET", "/api/v0.1/servers/password=Sup3r-Secret/Bearer%20abcdefghijklmnopqrstuvwxyz"),
    ("POST", "/api/x/postgresql://app:Sup3r-Secret@db/eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxIn0.c2lnbmF0dXJl"),
    ("GET", HOSTILE_PATH),
    ("BEARER", "/abcdefghijklmnopqrstuvwxyz"),  # no host routes this method: the whole message is redacted
]


def _access_logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(json_formatter())
    access = logging.getLogger("mcp_registry.access_test")
    access.handlers, access.propagate = [handler], False
    access.setLevel(logging.INFO)
    return access


def _request(method: str, route: str) -> dict[str, Any]:
    return {
        "invocation_id": str(uuid.uuid4()),
        "function": "get_registration",
        "method": method,
        "route": route,
        "trace_id": secrets.token_hex(16),
        "user_oid": str(uuid.uuid4()),
        "note": "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",  # a field bound later: redacted
    }


@pytest.mark.parametrize(("method", "route"), ACCESS_CASES)
def test_the_access_line_is_the_line_the_generic_record_would_give(method: str, route: str) -> None:
    stream = io.StringIO()
    access = _access_logger(stream)
    token = request_fields.set(_request(method, route))
    try:
        logs.log_access(access, 404, 1.5)
        access.info("%s %s %s", method, route, 404, extra={"status": 404, "duration_ms": 1.5})
    finally:
        request_fields.reset(token)
    built, generic = (json.loads(line, object_pairs_hook=list) for line in stream.getvalue().splitlines())
    # Same fields in the same order, same values; only the timestamps may differ.
    assert built[1:] == generic[1:] and built[0][0] == generic[0][0] == "timestamp"
    line, fields = stream.getvalue(), dict(built)
    assert "Sup3r" not in line and "c2lnbmF0dXJl" not in line
    assert "abcdefghijklmnopqrstuvwxyz" not in fields["message"] + fields["note"]


def test_the_access_line_redacts_only_what_a_caller_can_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting_redact(text: str) -> str:
        calls.append(text)
        return redact(text)

    monkeypatch.setattr(logs, "redact", counting_redact)
    stream = io.StringIO()
    fields = _request("GET", "/api/registrations/x")
    token = request_fields.set(fields)
    try:
        logs.log_access(_access_logger(stream), 200, 0.5)
    finally:
        request_fields.reset(token)
    # The route, the field bound without a known origin and the message; not the ids, the method or the function
    # name, which this service produced or validated.
    assert calls == [fields["route"], fields["note"], "GET /api/registrations/x 200"]
    assert json.loads(stream.getvalue())["message"] == "GET /api/registrations/x 200"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[IO[str]]:
    with open(tmp_path / "lines.log", "w+", encoding="utf-8") as stream:
        yield stream


def _read(stream: IO[str]) -> list[str]:
    with open(stream.name, encoding="utf-8") as again:  # what the file holds, not the writer's buffer
        return [json.loads(line)["message"] for line in again.read().splitlines()]


def _file_logger(stream: IO[str]) -> logging.Logger:
    handler = logs._StdoutHandler(stream)
    handler.setFormatter(json_formatter())
    lines = logging.getLogger("mcp_registry.test_flush")
    lines.handlers, lines.propagate = [handler], False
    lines.setLevel(logging.INFO)
    return lines


async def test_lines_logged_in_a_loop_turn_are_in_the_file_when_the_turn_ends(log_file: IO[str]) -> None:
    lines = _file_logger(log_file)
    lines.info("one")
    lines.info("two")
    await asyncio.sleep(0)  # the rest of this turn: the flush scheduled by the first line runs before it
    assert _read(log_file) == ["one", "two"]

    await asyncio.to_thread(lines.info, "three")  # no loop in that thread: written at once
    assert _read(log_file) == ["one", "two", "three"]


def test_a_flush_a_closed_loop_never_ran_does_not_hold_back_later_lines(log_file: IO[str]) -> None:
    lines = _file_logger(log_file)
    stopped = asyncio.new_event_loop()
    stopped.call_soon(lines.info, "one")
    stopped.call_soon(stopped.stop)  # stops after this turn: the flush "one" scheduled never runs
    stopped.run_forever()
    stopped.close()

    async def later() -> None:
        lines.info("two")
        await asyncio.sleep(0)

    asyncio.run(later())
    assert _read(log_file) == ["one", "two"]


def test_following_stdout_past_a_closed_capture_writes_to_the_new_one(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], log_file: IO[str]
) -> None:
    # What an atexit log line meets after a test runner closed the stdout file it had swapped in.
    first, second = log_file, io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    handler = logs._StdoutHandler()
    handler.setFormatter(json_formatter())
    lines = logging.getLogger("mcp_registry.test_follow")
    lines.handlers, lines.propagate = [handler], False
    lines.setLevel(logging.INFO)
    lines.info("one")
    first.close()
    monkeypatch.setattr(sys, "stdout", second)
    lines.info("two")
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["two"]
    assert "Logging error" not in capfd.readouterr().err


# ---------------------------------------------------------------- over real HTTP


@pytest.fixture
def info_host(start_host: HostFactory) -> LocalHostProcess:
    return start_host(LOG_LEVEL="INFO")


async def test_each_request_writes_exactly_one_structured_access_line(
    info_host: LocalHostProcess, user_token: Callable[..., str]
) -> None:
    oid = str(uuid.uuid4())
    token = user_token(oid=oid)
    missing = str(uuid.uuid4())
    calls = [
        ("GET", "/api/health", None, 200, None),
        ("POST", "/api/users", token, 201, oid),
        ("GET", "/api/users/me", token, 200, oid),
        ("GET", f"/api/registrations/{missing}", token, 404, oid),
        ("GET", "/api/users/me", None, 401, None),
    ]
    trace_ids = []
    async with info_host.client() as client:
        for method, path, bearer_token, status, _ in calls:
            trace_id, header = traceparent()
            trace_ids.append(trace_id)
            headers = {"traceparent": header, **(bearer(bearer_token) if bearer_token else {})}
            response = await client.request(method, path, headers=headers)
            assert response.status_code == status, response.text

    records = await wait_for_lines(info_host, lambda rs: len(access_lines(rs)) >= len(calls))
    lines = access_lines(records)
    assert len(lines) == len(calls)
    invocation_ids = set()
    for (method, path, _, status, oid_expected), trace_id in zip(calls, trace_ids, strict=True):
        matching = [line for line in lines if line.get("trace_id") == trace_id]
        assert len(matching) == 1, matching
        line = matching[0]
        assert REQUEST_FIELDS <= line.keys(), line
        assert (line["method"], line["route"], line["status"], line["level"]) == (method, path, status, "INFO")
        assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
        uuid.UUID(line["invocation_id"])
        invocation_ids.add(line["invocation_id"])
        assert line["function"]
        if oid_expected:
            assert line["user_oid"] == oid_expected
        else:
            assert "user_oid" not in line
    assert len(invocation_ids) == len(calls)
    # Records logged while serving a request carry its fields (the 401's "token rejected" line here).
    rejected = [r for r in records if r["message"].startswith("token rejected")]
    assert rejected and all(r.get("trace_id") == trace_ids[-1] and r["route"] == "/api/users/me" for r in rejected)


def hostile_paths() -> list[str]:
    """The issue's repro (8 and 16 KB) and a generated family of paths built to make redaction rescan."""
    generator = random.Random(14)
    units = ("a.", "eyJ-", "x-ms-token-", "bearer%20", "://a", "password%3A", "eyJaaaa.")
    family = [
        "/api/v0.1/servers/" + "".join(generator.choice(units) for _ in range(generator.randint(800, 2000))) + "!"
        for _ in range(8)
    ]
    return ["/api/v0.1/servers/x://" + "a." * size + "!" for size in (4 * 1024, 8 * 1024)] + family


async def test_hostile_paths_are_answered_beside_health_and_logged_within_the_cap(
    info_host: LocalHostProcess,
) -> None:
    paths = hostile_paths()
    async with info_host.client() as client:
        # All at once, health among them: under the former quadratic redaction these ten cost the worker's
        # event loop over a minute of CPU (1.5 s per 8 KB path), longer than this client waits.
        hostile = [asyncio.create_task(client.get(path)) for path in paths]
        health = await client.get("/api/health")
        answers = await asyncio.gather(*hostile)
    assert health.status_code == 200
    assert {response.status_code for response in answers} <= {400, 404}, [r.status_code for r in answers]

    records = await wait_for_lines(info_host, lambda rs: len(access_lines(rs)) >= len(paths) + 1)
    hostile_lines = [line for line in access_lines(records) if line["route"].startswith("/api/v0.1/servers/")]
    assert len(hostile_lines) == len(paths)
    for line in hostile_lines:
        for text in (line["message"], line["route"]):
            assert len(text) <= MAX_TEXT_CHARS + len(TRUNCATED), len(text)
            assert "…[truncated " in text


async def test_every_line_the_local_run_writes_is_json_including_the_servers_own_warnings(
    info_host: LocalHostProcess,
) -> None:
    await send_not_http(info_host)
    records = await wait_for_lines(info_host, has_server_warning)
    server_lines = [record for record in records if record["logger"].startswith("uvicorn")]
    assert server_lines and all(record["level"] == "WARNING" for record in server_lines), server_lines
    # The local run's own notes before it served are log records too.
    assert any(record["logger"] == "mcp_registry.local_run" for record in records)


async def test_a_request_without_traceparent_has_no_trace_id(info_host: LocalHostProcess) -> None:
    async with info_host.client() as client:
        for bad in (None, "not-a-traceparent", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"):
            response = await client.get("/api/health", headers={"traceparent": bad} if bad else {})
            assert response.status_code == 200
    lines = access_lines(await wait_for_lines(info_host, lambda rs: len(access_lines(rs)) >= 3))
    assert len(lines) == 3
    assert all("trace_id" not in line for line in lines)


async def test_log_level_warning_drops_info_lines(start_host: HostFactory) -> None:
    host = start_host(LOG_LEVEL="warning")
    async with host.client() as client:
        for _ in range(3):
            assert (await client.get("/api/health")).status_code == 200
        assert (await client.get("/api/users/me")).status_code == 401
    # Sentinel: a WARNING the host writes after those requests were answered. Once it is in the log, any access
    # line of theirs would be there before it.
    await send_not_http(host)
    records = await wait_for_lines(host, has_server_warning)
    assert has_server_warning(records)
    assert not access_lines(records)
    assert all(record["level"] in {"WARNING", "ERROR", "CRITICAL"} for record in records)


async def test_log_level_debug_keeps_info_lines(start_host: HostFactory) -> None:
    host = start_host(LOG_LEVEL="DEBUG")
    async with host.client() as client:
        assert (await client.get("/api/health")).status_code == 200
    assert len(access_lines(await wait_for_lines(host, lambda rs: bool(access_lines(rs))))) == 1


@pytest.fixture
async def broken_schema_database(pg_server_dsn: str) -> Any:
    """A database of its own whose registrations table is gone: listing registrations is a bug (500)."""
    dsn = await create_migrated_database(pg_server_dsn, prefix="mcpreg_logs")
    yield dsn
    await drop_database(pg_server_dsn, dsn)


async def _break_registrations(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER TABLE registrations RENAME TO registrations_moved_away")
    finally:
        await conn.close()


async def test_an_unexpected_error_is_logged_once_with_the_invocation_id_of_the_500(
    start_host: HostFactory, broken_schema_database: str, user_token: Callable[..., str]
) -> None:
    host = start_host(DATABASE_URL=broken_schema_database)
    token = user_token()
    async with host.client() as client:
        assert (await client.post("/api/users", headers=bearer(token))).status_code == 201
        await _break_registrations(broken_schema_database)
        response = await client.get("/api/registrations", headers=bearer(token))
    assert response.status_code == 500
    body = response.json()
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "Traceback" not in response.text and "registrations" not in body["detail"]
    invocation_id = body["invocation_id"]

    records = await wait_for_lines(host, lambda rs: any(r.get("status") == 500 for r in access_lines(rs)))
    with_stack = [r for r in records if "exc_info" in r]
    assert len(with_stack) == 1, with_stack
    error = with_stack[0]
    assert error["level"] == "ERROR" and error["invocation_id"] == invocation_id
    assert "UndefinedTableError" in error["exc_info"]
    assert error["function"] == "list_registrations" and error["route"] == "/api/registrations"
    access = [r for r in access_lines(records) if r["status"] == 500]
    assert len(access) == 1 and access[0]["invocation_id"] == invocation_id
    assert access[0]["error_code"] == "INTERNAL_ERROR"


# ---------------------------------------------------------------- nothing secret in a whole run's logs


def _with_password(dsn: str, password: str) -> tuple[str, str]:
    """The DSN with a password (trust auth ignores it); a DSN that already has one keeps it (real secret)."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn, parts.password
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment)), password


def _principal(oid: str) -> str:
    claims = [{"typ": "oid", "val": oid}, {"typ": "tid", "val": TENANT_ID}, {"typ": "name", "val": "Log Tester"}]
    principal = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(principal).encode()).decode("ascii")


def _secret_parts(token: str) -> Iterator[str]:
    """The token and its payload and signature (each long enough not to occur by chance)."""
    header, payload, signature = token.split(".")
    for part in (token, payload, signature):
        if len(part) >= 16:
            yield part


async def test_no_token_or_secret_appears_in_the_logs_of_a_full_run(
    start_host: HostFactory, issuer: TestIssuer, pg_server_dsn: str
) -> None:
    password = f"pw-{secrets.token_urlsafe(18)}"
    database = await create_migrated_database(pg_server_dsn, prefix="mcpreg_secrets")
    try:
        dsn, password = _with_password(database, password)
        host = start_host(DATABASE_URL=dsn, LOG_LEVEL="DEBUG", EASYAUTH_REQUIRED="true", DB_COMMAND_TIMEOUT_S="1")
        requests_made = await _run_many_requests(host, issuer, database)
    finally:
        await drop_database(pg_server_dsn, database)

    text = host.logs()
    records = log_records(host)
    # The run really was logged: one access line per request at least, failures included.
    statuses = {record["status"] for record in access_lines(records)}
    assert {200, 201, 401, 404, 422, 400, 500, 503} <= statuses, statuses
    assert len(access_lines(records)) == requests_made >= 39
    for secret in _RUN_SECRETS + [password, dsn]:
        assert secret not in text, f"secret leaked into the logs: {secret[:12]}…"
    assert "Bearer ey" not in text
    assert "authorization" not in {key.lower() for record in records for key in record}


_RUN_SECRETS: list[str] = []


async def _run_many_requests(host: LocalHostProcess, issuer: TestIssuer, database: str) -> int:
    """Successes, 401s, 403, 404, 400, 422, 503 and 500 against `host`; returns how many requests it made."""
    _RUN_SECRETS.clear()
    oid, admin_oid = str(uuid.uuid4()), str(uuid.uuid4())
    token = issuer.token(oid=oid)
    admin = issuer.token(oid=admin_oid, admin_role="Admin")
    principal, admin_principal = _principal(oid), _principal(admin_oid)
    now = int(time.time())
    bad_tokens = {
        "expired": issuer.token(oid=oid, expires_in=-3600),
        "wrong audience": issuer.token(oid=oid, audience=str(uuid.uuid4())),
        "tampered": token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"),
        "foreign key": issuer.token(oid=oid, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "unsigned": issuer.sign({"oid": oid, "tid": TENANT_ID, "aud": "x", "iss": "y", "exp": now + 60}),
        "garbage": "abc.def.ghi",
    }
    for value in (token, admin, *bad_tokens.values()):
        _RUN_SECRETS.extend(_secret_parts(value))
    _RUN_SECRETS.extend([principal, admin_principal])

    def auth(bearer_token: str, blob: str, principal_id: str) -> dict[str, str]:
        return {
            **bearer(bearer_token),
            "X-MS-CLIENT-PRINCIPAL": blob,
            "X-MS-CLIENT-PRINCIPAL-ID": principal_id,
            "X-MS-CLIENT-PRINCIPAL-NAME": "log.tester@example.com",
            "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        }

    user_headers = auth(token, principal, oid)
    admin_headers = auth(admin, admin_principal, admin_oid)
    responses: list[httpx.Response] = []

    async def count(response: httpx.Response) -> None:
        responses.append(response)

    async with host.client(event_hooks={"response": [count]}) as client:
        # Successes.
        assert (await client.get("/api/health")).status_code == 200
        assert (await client.post("/api/users", headers=user_headers)).status_code == 201
        assert (await client.post("/api/users", headers=admin_headers)).status_code == 201
        created_ids = []
        for _ in range(5):
            response = await client.post("/api/registrations", json=registration_body(endpoint_url=unique_url("logs")), headers=user_headers)
            assert response.status_code == 201, response.text
            created_ids.append(response.json()["registration_id"])
        for registration_id in created_ids:
            assert (await client.get(f"/api/registrations/{registration_id}", headers=user_headers)).status_code == 200
        assert (await client.get("/api/registrations", headers=user_headers)).status_code == 200
        assert (await client.get("/api/registrations/my", headers=user_headers)).status_code == 200
        decision = {"status": "Approved", "reason": "fine"}
        response = await client.patch(
            f"/api/registrations/{created_ids[0]}/status", json=decision, headers=admin_headers
        )
        assert response.status_code == 200, response.text
        assert (await client.get("/api/audit-logs", headers=admin_headers)).status_code == 200
        # 401s: bad tokens, the token without or with someone else's principal, other schemes.
        for name, bad in bad_tokens.items():
            response = await client.get("/api/users/me", headers=auth(bad, principal, oid))
            assert response.status_code == 401, name
        assert (await client.get("/api/users/me", headers=bearer(token))).status_code == 401
        assert (await client.get("/api/users/me", headers=auth(token, admin_principal, oid))).status_code == 401
        assert (await client.get("/api/users/me", headers=auth(token, principal, admin_oid))).status_code == 401
        response = await client.get("/api/users/me", headers={**user_headers, "Authorization": f"Basic {token}"})
        assert response.status_code == 401
        response = await client.get("/api/users/me", headers={**user_headers, "Authorization": f"Bearer {token}, {admin}"})
        assert response.status_code == 401
        # 403, 404, 400, 422.
        assert (await client.get("/api/audit-logs", headers=user_headers)).status_code == 403
        for _ in range(3):
            response = await client.get(f"/api/registrations/{uuid.uuid4()}", headers=user_headers)
            assert response.status_code == 404
        response = await client.post(
            "/api/registrations", content=b"{not json", headers={**user_headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 400
        invalid = {**registration_body(endpoint_url="not a url"), "password": "x"}
        assert (await client.post("/api/registrations", json=invalid, headers=user_headers)).status_code == 422
        # The token in a query string (a client's mistake) is not logged either.
        response = await client.get(f"/api/registrations?access_token={token}", headers=user_headers)
        assert response.status_code in {200, 400}
        # 503: the table is locked longer than the command timeout.
        await _locked_request(client, database, user_headers)
        # 500: the table is gone (a bug, from the app's point of view).
        await _break_registrations(database)
        response = await client.get("/api/registrations", headers=user_headers)
        assert response.status_code == 500
        for _ in range(2):
            assert (await client.get("/api/users/me", headers=user_headers)).status_code == 200
    return len(responses)


async def _locked_request(client: httpx.AsyncClient, database: str, headers: dict[str, str]) -> None:
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE registrations IN ACCESS EXCLUSIVE MODE")
            response = await client.get("/api/registrations", headers=headers)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
    finally:
        await conn.close()
    await asyncio.sleep(0)


# ---------------------------------------------------------------- under the Functions worker


WORKER_LOGGING = """
import json, logging, sys

class AsyncLoggingHandler(logging.Handler):
    # Stands in for the worker's gRPC handler: it formats each record and forwards the text to the host.
    def __init__(self):
        super().__init__()
        self.forwarded = []
    def emit(self, record):
        self.forwarded.append(self.format(record))

AsyncLoggingHandler.__module__ = "azure_functions_worker.dispatcher"
worker = AsyncLoggingHandler()
root = logging.getLogger()
root.addHandler(worker)
root.setLevel(logging.INFO)

import function_app
from shared.logs import request_fields

handlers = [type(h).__name__ for h in root.handlers]
request_fields.set({"invocation_id": "inv-azure", "function": "health"})
logging.getLogger("mcp_registry.access").info("GET /api/health 200", extra={"status": 200})
logging.getLogger("shared.auth").debug("a debug line LOG_LEVEL drops")
logging.getLogger("azure_functions_worker").info("Received FunctionInvocationRequest")
print("RESULT " + json.dumps({"handlers": handlers, "forwarded": worker.forwarded, "root_level": root.level}))
"""


def test_under_the_worker_its_handler_forwards_our_records_as_json_and_nothing_is_printed_twice() -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LOG_LEVEL": "INFO"}
    completed = subprocess.run(
        [sys.executable, "-c", WORKER_LOGGING], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    # No stdout handler of ours: the host collects stdout too, so it would log every line twice.
    assert result["handlers"] == ["AsyncLoggingHandler"]
    assert [line for line in completed.stdout.splitlines() if not line.startswith("RESULT ")] == []
    # The worker keeps its root level; our loggers follow LOG_LEVEL.
    assert result["root_level"] == logging.INFO
    app_line, worker_line = result["forwarded"]
    record = json.loads(app_line)
    assert record["logger"] == "mcp_registry.access" and record["invocation_id"] == "inv-azure"
    assert record["status"] == 200 and record["level"] == "INFO"
    assert worker_line == "Received FunctionInvocationRequest"
