"""Validation, table-driven: every body field at and just past each limit, malformed bodies and query
strings, NUL characters anywhere — each bad request is a 4xx in the contract's shape (never a 500) and
changes nothing in the database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.registrations import (
    AUDIT_LOGS,
    REGISTRATIONS,
    assert_error,
    bearer,
    create_registration,
    registration_body,
    unique_url,
)

TokenFactory = Callable[..., str]
JSON_HEADER = {"Content-Type": "application/json"}
NUL = "\u0000"


def url_of_length(length: int) -> str:
    base = f"https://v-{uuid.uuid4().hex[:12]}.example.com/"
    return base + "p" * (length - len(base))


def tools(count: int) -> list[dict[str, str]]:
    return [{"name": f"tool_{n}"} for n in range(count)]


async def rows_of(db: asyncpg.Connection, oid: str) -> tuple[int, int]:
    """(registrations submitted by, audit entries written by) the user with this Entra object id."""
    registrations = await db.fetchval(
        "SELECT count(*) FROM registrations r JOIN users u ON u.user_id = r.submitter_id WHERE u.entra_id = $1", oid
    )
    audit = await db.fetchval(
        "SELECT count(*) FROM audit_log l JOIN users u ON u.user_id = l.user_id WHERE u.entra_id = $1", oid
    )
    return int(registrations), int(audit)


async def snapshot(db: asyncpg.Connection, registration_id: str) -> tuple[Any, ...]:
    row = await db.fetchrow("SELECT * FROM registrations WHERE registration_id = $1", uuid.UUID(registration_id))
    audit = await db.fetchval("SELECT count(*) FROM audit_log WHERE registration_id = $1", uuid.UUID(registration_id))
    return (dict(row) if row else None, audit)


# ---------------------------------------------------------------- POST: accepted at each limit

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("endpoint_url_2048_chars", {"endpoint_url": url_of_length(2048)}),
    ("endpoint_url_http", {"endpoint_url": unique_url().replace("https://", "http://")}),
    ("endpoint_url_with_port_and_query", {"endpoint_url": unique_url().replace(".com/", ".com:8443/") + "?a=1&b=%20"}),
    ("endpoint_url_ip_host", {"endpoint_url": f"http://127.0.0.1:9/{uuid.uuid4().hex}"}),
    ("endpoint_name_3_chars", {"endpoint_name": "abc"}),
    ("endpoint_name_3_chars_after_trimming", {"endpoint_name": "   abc   "}),
    ("endpoint_name_200_chars", {"endpoint_name": "n" * 200}),
    ("endpoint_name_200_chars_after_trimming", {"endpoint_name": " " + "n" * 200 + " "}),
    ("endpoint_name_non_ascii_200_chars", {"endpoint_name": "é" * 200}),
    ("description_1000_chars", {"description": "d" * 1000}),
    ("description_empty", {"description": ""}),
    ("description_null", {"description": None}),
    ("owner_contact_1_char", {"owner_contact": "x"}),
    ("owner_contact_320_chars", {"owner_contact": "o" * 320}),
    ("available_tools_empty", {"available_tools": []}),
    ("available_tools_100_items", {"available_tools": tools(100)}),
    ("tool_name_1_char", {"available_tools": [{"name": "t"}]}),
    ("tool_name_100_chars", {"available_tools": [{"name": "t" * 100}]}),
    ("tool_description_500_chars", {"available_tools": [{"name": "t", "description": "d" * 500}]}),
    ("tool_version_50_chars", {"available_tools": [{"name": "t", "version": "v" * 50}]}),
    ("tool_optional_fields_null", {"available_tools": [{"name": "t", "description": None, "version": None}]}),
    ("bare_string_tools", {"available_tools": ["alpha", "beta"]}),
    ("description_with_line_breaks_and_tabs", {"description": "Forecasts:\n\t- daily\r\n\t- hourly"}),
    ("endpoint_name_with_emoji_joiner", {"endpoint_name": "Team 👩\u200d💻 tools"}),
]


@pytest.mark.parametrize(("case", "overrides"), ACCEPTED, ids=[case for case, _ in ACCEPTED])
async def test_create_accepts_value_at_the_limit(
    api: httpx.AsyncClient, user_token: TokenFactory, case: str, overrides: dict[str, Any]
) -> None:
    body = registration_body(**overrides)
    if "endpoint_url" in overrides:
        body["endpoint_url"] = overrides["endpoint_url"]

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(user_token()))

    assert response.status_code == 201, response.text
    for field, value in overrides.items():
        if field == "endpoint_name":
            assert response.json()[field] == value.strip()
        elif field != "available_tools":
            assert response.json()[field] == value


# ---------------------------------------------------------------- POST: refused just past each limit

BAD_URLS = [
    ("ftp_scheme", "ftp://files.example.com/mcp"),
    ("no_host", "https://"),
    ("port_without_host", "https://:8080/mcp"),
    ("javascript", "javascript:alert(1)"),
    ("data_uri", "data:text/plain,hello"),
    ("mailto", "mailto:someone@example.com"),
    ("relative", "/api/mcp"),
    ("scheme_relative", "//example.com/mcp"),
    ("no_scheme", "example.com/mcp"),
    ("space_in_host", "https://exa mple.com/mcp"),
    ("bare_ipv6_without_brackets", "http://::1/mcp"),
    ("user_info", "https://user:secret@example.com/mcp"),
    ("user_name_only", "https://mcp.example.com@evil.example.net/mcp"),
    ("fragment", "https://example.com/mcp#tools"),
    ("tab_inside", "https://example.com/a\tb"),
    ("newline_inside", "https://example.com/a\nb"),
    ("unclosed_ipv6", "https://[::1/mcp"),
    ("port_out_of_range", "https://example.com:70000/mcp"),
    ("port_zero", "https://example.com:0/mcp"),
    ("empty", ""),
    ("only_spaces", "   "),
    ("over_2048_chars", url_of_length(2049)),
]

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    *[(f"endpoint_url_{name}", {"endpoint_url": url}, "endpoint_url") for name, url in BAD_URLS],
    ("endpoint_name_2_chars", {"endpoint_name": "ab"}, "endpoint_name"),
    ("endpoint_name_2_chars_after_trimming", {"endpoint_name": "  ab  "}, "endpoint_name"),
    ("endpoint_name_201_chars", {"endpoint_name": "n" * 201}, "endpoint_name"),
    ("endpoint_name_empty", {"endpoint_name": ""}, "endpoint_name"),
    ("endpoint_name_only_spaces", {"endpoint_name": "     "}, "endpoint_name"),
    ("description_1001_chars", {"description": "d" * 1001}, "description"),
    ("owner_contact_empty", {"owner_contact": ""}, "owner_contact"),
    ("owner_contact_only_spaces", {"owner_contact": "   "}, "owner_contact"),
    ("owner_contact_321_chars", {"owner_contact": "o" * 321}, "owner_contact"),
    ("available_tools_101_items", {"available_tools": tools(101)}, "available_tools"),
    ("tool_name_empty", {"available_tools": [{"name": ""}]}, "available_tools.0.name"),
    ("tool_name_only_spaces", {"available_tools": ["   "]}, "available_tools.0.name"),
    ("tool_name_101_chars", {"available_tools": [{"name": "t" * 101}]}, "available_tools.0.name"),
    ("tool_name_missing", {"available_tools": [{"description": "no name"}]}, "available_tools.0.name"),
    ("tool_description_501_chars", {"available_tools": [{"name": "t", "description": "d" * 501}]}, "available_tools.0.description"),
    ("tool_version_51_chars", {"available_tools": [{"name": "t", "version": "v" * 51}]}, "available_tools.0.version"),
    ("tool_unknown_field", {"available_tools": [{"name": "t", "schema": {}}]}, "available_tools.0.schema"),
    ("duplicate_tool_names", {"available_tools": [{"name": "dup"}, {"name": "dup"}]}, "available_tools"),
    ("duplicate_bare_string_tools", {"available_tools": ["dup", "dup"]}, "available_tools"),
    ("duplicate_tool_names_after_trimming", {"available_tools": ["dup", {"name": " dup "}]}, "available_tools"),
    ("tool_names_differing_in_case", {"available_tools": ["Tool", "tool"]}, "available_tools"),
    ("tool_names_composed_and_decomposed", {"available_tools": ["caf\u00e9", "cafe\u0301"]}, "available_tools"),
    ("tool_names_ligature_and_letters", {"available_tools": ["\ufb01le", "file"]}, "available_tools"),
    ("tool_name_bell", {"available_tools": ["ring\u0007"]}, "available_tools.0.name"),
    ("tool_name_newline", {"available_tools": ["two\nlines"]}, "available_tools.0.name"),
    ("tool_description_rtl_override", {"available_tools": [{"name": "t", "description": "safe \u202egnp.exe"}]}, "available_tools.0.description"),
    ("endpoint_name_rtl_override", {"endpoint_name": "Weather \u202eredaeR"}, "endpoint_name"),
    ("endpoint_name_bell", {"endpoint_name": "Weather\u0007 tools"}, "endpoint_name"),
    ("endpoint_name_newline", {"endpoint_name": "Weather\ntools"}, "endpoint_name"),
    ("endpoint_name_isolate", {"endpoint_name": "Weather \u2067tools\u2069"}, "endpoint_name"),
    ("description_escape_sequence", {"description": "red \u001b[31m text"}, "description"),
    ("description_c1_control", {"description": "next\u0085line"}, "description"),
    ("description_lrm", {"description": "mark \u200e here"}, "description"),
    ("unknown_field", {"category": "weather"}, "category"),
    ("unknown_field_status", {"status": "Approved"}, "status"),
    ("unknown_field_submitter_id", {"submitter_id": str(uuid.uuid4())}, "submitter_id"),
    ("unknown_field_registration_id", {"registration_id": str(uuid.uuid4())}, "registration_id"),
    ("endpoint_url_number", {"endpoint_url": 12345}, "endpoint_url"),
    ("endpoint_url_object", {"endpoint_url": {"href": "https://example.com"}}, "endpoint_url"),
    ("endpoint_name_number", {"endpoint_name": 123}, "endpoint_name"),
    ("endpoint_name_boolean", {"endpoint_name": True}, "endpoint_name"),
    ("endpoint_name_list", {"endpoint_name": ["abc"]}, "endpoint_name"),
    ("endpoint_name_null", {"endpoint_name": None}, "endpoint_name"),
    ("description_number", {"description": 5}, "description"),
    ("owner_contact_null", {"owner_contact": None}, "owner_contact"),
    ("available_tools_string", {"available_tools": "search"}, "available_tools"),
    ("available_tools_object", {"available_tools": {"name": "search"}}, "available_tools"),
    ("available_tools_null", {"available_tools": None}, "available_tools"),
    ("tool_number", {"available_tools": [1]}, "available_tools.0"),
    ("tool_null", {"available_tools": [None]}, "available_tools.0"),
    ("tool_list", {"available_tools": [["search"]]}, "available_tools.0"),
    ("tool_name_number", {"available_tools": [{"name": 5}]}, "available_tools.0.name"),
]


@pytest.mark.parametrize(("case", "overrides", "field"), REFUSED, ids=[case for case, _, _ in REFUSED])
async def test_create_refuses_invalid_field_with_422_naming_it_and_stores_nothing(
    api: httpx.AsyncClient,
    user_token: TokenFactory,
    db: asyncpg.Connection,
    case: str,
    overrides: dict[str, Any],
    field: str,
) -> None:
    oid = str(uuid.uuid4())

    response = await api.post(REGISTRATIONS, json=registration_body(**overrides), headers=bearer(user_token(oid=oid)))

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["field_errors"]) == [field]
    assert await rows_of(db, oid) == (0, 0)


@pytest.mark.parametrize("field", ["endpoint_url", "endpoint_name", "owner_contact", "available_tools"])
async def test_create_refuses_a_missing_required_field_with_422(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, field: str
) -> None:
    oid = str(uuid.uuid4())
    body = registration_body()
    del body[field]

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(user_token(oid=oid)))

    errors = assert_error(response, 422, "VALIDATION_ERROR")
    assert errors["field_errors"] == {field: "Field required"}
    assert await rows_of(db, oid) == (0, 0)


async def test_create_names_every_invalid_field_at_once(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.post(
        REGISTRATIONS,
        json={"endpoint_url": "ftp://x", "endpoint_name": "x", "owner_contact": "", "available_tools": ["a", {"name": ""}], "extra": 1},
        headers=bearer(user_token()),
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {
        "endpoint_url",
        "endpoint_name",
        "owner_contact",
        "available_tools.1.name",
        "extra",
    }


# ---------------------------------------------------------------- NUL characters in every string field

NUL_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("endpoint_url", {"endpoint_url": f"https://nul-{uuid.uuid4().hex[:8]}.example.com/a{NUL}b"}, "endpoint_url"),
    ("endpoint_name", {"endpoint_name": f"Name{NUL}here"}, "endpoint_name"),
    ("description", {"description": f"desc{NUL}"}, "description"),
    ("owner_contact", {"owner_contact": f"{NUL}team"}, "owner_contact"),
    ("tool_name", {"available_tools": [{"name": f"t{NUL}"}]}, "available_tools.0.name"),
    ("bare_string_tool", {"available_tools": [f"t{NUL}"]}, "available_tools.0.name"),
    ("tool_description", {"available_tools": [{"name": "t", "description": f"d{NUL}"}]}, "available_tools.0.description"),
    ("tool_version", {"available_tools": [{"name": "t", "version": f"1{NUL}"}]}, "available_tools.0.version"),
    ("unknown_field_name", {f"x{NUL}y": "value"}, f"x{NUL}y"),
]


@pytest.mark.parametrize(("case", "overrides", "field"), NUL_FIELDS, ids=[case for case, _, _ in NUL_FIELDS])
async def test_create_refuses_a_nul_character_with_422(
    api: httpx.AsyncClient,
    user_token: TokenFactory,
    db: asyncpg.Connection,
    case: str,
    overrides: dict[str, Any],
    field: str,
) -> None:
    oid = str(uuid.uuid4())

    response = await api.post(REGISTRATIONS, json=registration_body(**overrides), headers=bearer(user_token(oid=oid)))

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["field_errors"]) == [field]
    assert await rows_of(db, oid) == (0, 0)


NUL_UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("endpoint_url", {"endpoint_url": f"https://nul.example.com/{NUL}"}),
    ("endpoint_name", {"endpoint_name": f"abc{NUL}"}),
    ("description", {"description": NUL}),
    ("owner_contact", {"owner_contact": f"a{NUL}b"}),
    ("tool_name", {"available_tools": [f"x{NUL}"]}),
    ("tool_description", {"available_tools": [{"name": "x", "description": NUL}]}),
    ("tool_version", {"available_tools": [{"name": "x", "version": NUL}]}),
]


@pytest.mark.parametrize(("case", "changes"), NUL_UPDATES, ids=[case for case, _ in NUL_UPDATES])
async def test_edit_refuses_a_nul_character_with_422_and_changes_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, case: str, changes: dict[str, Any]
) -> None:
    token = user_token()
    created = await create_registration(api, token)
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(f"{REGISTRATIONS}/{created['registration_id']}", json=changes, headers=bearer(token))

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await snapshot(db, created["registration_id"]) == before


async def test_decision_refuses_a_nul_character_in_the_reason_with_422(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created = await create_registration(api, user_token())
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status",
        json={"status": "Rejected", "reason": f"no{NUL}"},
        headers=bearer(user_token(admin=True)),
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["field_errors"]) == ["reason"]
    assert await snapshot(db, created["registration_id"]) == before


# ---------------------------------------------------------------- text PostgreSQL cannot store


@pytest.mark.parametrize(
    "field", ["endpoint_url", "endpoint_name", "description", "owner_contact", "tool_name"]
)
async def test_create_refuses_a_lone_surrogate_escape_without_a_500(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, field: str
) -> None:
    oid = str(uuid.uuid4())
    body = registration_body()
    if field == "tool_name":
        body["available_tools"] = ["PLACEHOLDER"]
    elif field == "endpoint_url":
        body["endpoint_url"] += "PLACEHOLDER"
    else:
        body[field] = "abc PLACEHOLDER"
    # "\ud800" is valid JSON syntax but not a Unicode character: it cannot be encoded as UTF-8.
    raw = json.dumps(body).replace("PLACEHOLDER", "\\ud800").encode()

    response = await api.post(REGISTRATIONS, content=raw, headers=bearer(user_token(oid=oid), **JSON_HEADER))

    assert response.status_code in (400, 422), response.text
    assert response.json()["error_code"] in ("INVALID_JSON", "VALIDATION_ERROR")
    assert await rows_of(db, oid) == (0, 0)


# ---------------------------------------------------------------- malformed bodies

MALFORMED: list[tuple[str, bytes]] = [
    ("truncated_object", b'{"endpoint_url": "https://example.com"'),
    ("trailing_garbage", b"{} x"),
    ("single_quotes", b"{'endpoint_url': 'https://example.com'}"),
    ("nan_value", b'{"endpoint_name": NaN}'),
    ("infinity_value", b'{"endpoint_name": Infinity}'),
    ("bare_word", b"hello"),
    ("invalid_utf8", b'{"endpoint_name": "\xff\xfe\xfd"}'),
    ("invalid_utf8_overlong_nul", b'{"endpoint_name": "ab\xc0\x80c"}'),
    ("latin1_encoded", '{"endpoint_name": "Caf\u00e9"}'.encode("latin-1")),
    ("deeply_nested", b"[" * 100_000 + b"]" * 100_000),
]

NON_OBJECTS: list[tuple[str, bytes]] = [
    ("array", b"[]"),
    ("array_of_object", json.dumps([registration_body()]).encode()),
    ("string", b'"registration"'),
    ("number", b"42"),
    ("null", b"null"),
    ("true", b"true"),
]

EMPTY: list[tuple[str, bytes]] = [("empty", b""), ("whitespace_only", b" \r\n\t ")]


@pytest.mark.parametrize(
    ("case", "raw"), MALFORMED + NON_OBJECTS + EMPTY, ids=[case for case, _ in MALFORMED + NON_OBJECTS + EMPTY]
)
async def test_create_refuses_a_body_that_is_not_a_json_object_with_400(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, case: str, raw: bytes
) -> None:
    oid = str(uuid.uuid4())

    response = await api.post(REGISTRATIONS, content=raw, headers=bearer(user_token(oid=oid), **JSON_HEADER))

    if len(raw) > 64 * 1024:
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    else:
        assert_error(response, 400, "INVALID_JSON")
    assert await rows_of(db, oid) == (0, 0)


@pytest.mark.parametrize(("case", "raw"), NON_OBJECTS + EMPTY, ids=[case for case, _ in NON_OBJECTS + EMPTY])
async def test_edit_refuses_a_body_that_is_not_a_json_object_with_400(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, case: str, raw: bytes
) -> None:
    token = user_token()
    created = await create_registration(api, token)
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", content=raw, headers=bearer(token, **JSON_HEADER)
    )

    assert_error(response, 400, "INVALID_JSON")
    assert await snapshot(db, created["registration_id"]) == before


@pytest.mark.parametrize(("case", "raw"), NON_OBJECTS + EMPTY, ids=[case for case, _ in NON_OBJECTS + EMPTY])
async def test_decision_refuses_a_body_that_is_not_a_json_object_with_400(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, case: str, raw: bytes
) -> None:
    created = await create_registration(api, user_token())
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status",
        content=raw,
        headers=bearer(user_token(admin=True), **JSON_HEADER),
    )

    assert_error(response, 400, "INVALID_JSON")
    assert await snapshot(db, created["registration_id"]) == before


# ---------------------------------------------------------------- content types and sizes

NOT_JSON_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
]


@pytest.mark.parametrize("content_type", NOT_JSON_TYPES)
async def test_create_refuses_a_body_that_is_not_json_with_415(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection, content_type: str
) -> None:
    oid = str(uuid.uuid4())

    response = await api.post(
        REGISTRATIONS,
        content=json.dumps(registration_body()).encode(),
        headers=bearer(user_token(oid=oid), **{"Content-Type": content_type}),
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await rows_of(db, oid) == (0, 0)


async def test_create_refuses_a_body_without_a_content_type_with_415(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())

    response = await api.post(
        REGISTRATIONS, content=json.dumps(registration_body()).encode(), headers=bearer(user_token(oid=oid))
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await rows_of(db, oid) == (0, 0)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
)
async def test_create_accepts_json_content_type_variants(
    api: httpx.AsyncClient, user_token: TokenFactory, content_type: str
) -> None:
    response = await api.post(
        REGISTRATIONS,
        content=json.dumps(registration_body()).encode(),
        headers=bearer(user_token(), **{"Content-Type": content_type}),
    )

    assert response.status_code == 201, response.text


async def test_edit_refuses_a_text_body_with_415(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    created = await create_registration(api, token)
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        content=b'{"endpoint_name": "Plain text"}',
        headers=bearer(token, **{"Content-Type": "text/plain"}),
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await snapshot(db, created["registration_id"]) == before


def padded_to(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


async def test_create_accepts_a_body_of_exactly_64_kib(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    raw = padded_to(registration_body(), 64 * 1024)

    response = await api.post(REGISTRATIONS, content=raw, headers=bearer(user_token(), **JSON_HEADER))

    assert response.status_code == 201, response.text


async def test_create_refuses_a_body_one_byte_over_64_kib_with_413(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())
    raw = padded_to(registration_body(), 64 * 1024 + 1)

    response = await api.post(REGISTRATIONS, content=raw, headers=bearer(user_token(oid=oid), **JSON_HEADER))

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await rows_of(db, oid) == (0, 0)


async def test_create_refuses_a_large_body_of_any_content_type_with_413(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    response = await api.post(
        REGISTRATIONS, content=b"x" * (1024 * 1024), headers=bearer(user_token(), **{"Content-Type": "text/plain"})
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_edit_refuses_a_body_over_64_kib_with_413(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    created = await create_registration(api, token)
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        content=padded_to({"description": "big"}, 64 * 1024 + 1),
        headers=bearer(token, **JSON_HEADER),
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await snapshot(db, created["registration_id"]) == before


# ---------------------------------------------------------------- PATCH bodies

UPDATE_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("endpoint_url_javascript", {"endpoint_url": "javascript:alert(1)"}, "endpoint_url"),
    ("endpoint_url_over_2048", {"endpoint_url": url_of_length(2049)}, "endpoint_url"),
    ("endpoint_url_null", {"endpoint_url": None}, "endpoint_url"),
    ("endpoint_name_2_chars_after_trimming", {"endpoint_name": " ab "}, "endpoint_name"),
    ("endpoint_name_201_chars", {"endpoint_name": "n" * 201}, "endpoint_name"),
    ("endpoint_name_null", {"endpoint_name": None}, "endpoint_name"),
    ("description_1001_chars", {"description": "d" * 1001}, "description"),
    ("owner_contact_321_chars", {"owner_contact": "o" * 321}, "owner_contact"),
    ("available_tools_101_items", {"available_tools": tools(101)}, "available_tools"),
    ("available_tools_null", {"available_tools": None}, "available_tools"),
    ("duplicate_tool_names", {"available_tools": ["a", "a"]}, "available_tools"),
    ("tool_name_101_chars", {"available_tools": ["t" * 101]}, "available_tools.0.name"),
    ("unknown_field", {"approver_id": str(uuid.uuid4())}, "approver_id"),
    ("wrong_type", {"endpoint_name": 12345}, "endpoint_name"),
]


@pytest.mark.parametrize(("case", "changes", "field"), UPDATE_REFUSED, ids=[case for case, _, _ in UPDATE_REFUSED])
async def test_edit_refuses_invalid_field_with_422_and_changes_nothing(
    api: httpx.AsyncClient,
    user_token: TokenFactory,
    db: asyncpg.Connection,
    case: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    token = user_token()
    created = await create_registration(api, token)
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(f"{REGISTRATIONS}/{created['registration_id']}", json=changes, headers=bearer(token))

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["field_errors"]) == [field]
    assert await snapshot(db, created["registration_id"]) == before


STATUS_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("status_pending", {"status": "Pending"}, "status"),
    ("status_lowercase", {"status": "approved"}, "status"),
    ("status_missing", {"reason": "why"}, "status"),
    ("status_number", {"status": 1}, "status"),
    ("reason_1001_chars", {"status": "Rejected", "reason": "r" * 1001}, "reason"),
    ("reason_number", {"status": "Rejected", "reason": 7}, "reason"),
    ("unknown_field", {"status": "Approved", "approver_id": str(uuid.uuid4())}, "approver_id"),
]


@pytest.mark.parametrize(("case", "body", "field"), STATUS_REFUSED, ids=[case for case, _, _ in STATUS_REFUSED])
async def test_decision_refuses_invalid_field_with_422_and_changes_nothing(
    api: httpx.AsyncClient,
    user_token: TokenFactory,
    db: asyncpg.Connection,
    case: str,
    body: dict[str, Any],
    field: str,
) -> None:
    created = await create_registration(api, user_token())
    before = await snapshot(db, created["registration_id"])

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status", json=body, headers=bearer(user_token(admin=True))
    )

    errors = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(errors["field_errors"]) == [field]
    assert await snapshot(db, created["registration_id"]) == before


async def test_decision_accepts_a_reason_of_1000_characters(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created = await create_registration(api, user_token())

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status",
        json={"status": "Rejected", "reason": "r" * 1000},
        headers=bearer(user_token(admin=True)),
    )

    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- query strings

LIST_QUERIES: list[tuple[str, str, dict[str, str], int]] = [
    ("limit_0", REGISTRATIONS, {"limit": "0"}, 400),
    ("limit_1", REGISTRATIONS, {"limit": "1"}, 200),
    ("limit_1000", REGISTRATIONS, {"limit": "1000"}, 200),
    ("limit_1001", REGISTRATIONS, {"limit": "1001"}, 400),
    ("limit_negative", REGISTRATIONS, {"limit": "-1"}, 400),
    ("limit_not_a_number", REGISTRATIONS, {"limit": "ten"}, 400),
    ("limit_fraction", REGISTRATIONS, {"limit": "1.5"}, 400),
    ("limit_empty", REGISTRATIONS, {"limit": ""}, 400),
    ("offset_minus_1", REGISTRATIONS, {"offset": "-1"}, 400),
    ("offset_0", REGISTRATIONS, {"offset": "0"}, 200),
    ("offset_max", REGISTRATIONS, {"offset": "2147483647"}, 200),
    ("offset_past_bigint", REGISTRATIONS, {"offset": "9223372036854775808"}, 400),
    ("offset_not_a_number", REGISTRATIONS, {"offset": "first"}, 400),
    ("submitter_id_bad_uuid", REGISTRATIONS, {"submitter_id": "not-a-uuid"}, 400),
    ("submitter_id_truncated_uuid", REGISTRATIONS, {"submitter_id": str(uuid.uuid4())[:-1]}, 400),
    ("submitter_id_unknown_uuid", REGISTRATIONS, {"submitter_id": str(uuid.uuid4())}, 200),
    ("status_bad", REGISTRATIONS, {"status": "Deleted"}, 400),
    ("status_lowercase", REGISTRATIONS, {"status": "approved"}, 400),
    ("status_each_valid_value", REGISTRATIONS, {"status": "Rejected"}, 200),
    ("search_200_chars", REGISTRATIONS, {"search": "s" * 200}, 200),
    ("search_201_chars", REGISTRATIONS, {"search": "s" * 201}, 400),
    ("unknown_parameter_ignored", REGISTRATIONS, {"_": "1700000000000"}, 200),
    ("my_limit_0", f"{REGISTRATIONS}/my", {"limit": "0"}, 400),
    ("my_limit_1", f"{REGISTRATIONS}/my", {"limit": "1"}, 200),
    ("my_limit_1000", f"{REGISTRATIONS}/my", {"limit": "1000"}, 200),
    ("my_limit_1001", f"{REGISTRATIONS}/my", {"limit": "1001"}, 400),
    ("my_offset_minus_1", f"{REGISTRATIONS}/my", {"offset": "-1"}, 400),
    ("my_status_bad", f"{REGISTRATIONS}/my", {"status": "Done"}, 400),
    ("by_url_empty", f"{REGISTRATIONS}/by-url", {"endpoint_url": ""}, 400),
    ("by_url_only_spaces", f"{REGISTRATIONS}/by-url", {"endpoint_url": "   "}, 400),
    ("by_url_over_2048", f"{REGISTRATIONS}/by-url", {"endpoint_url": url_of_length(2049)}, 400),
    ("by_url_2048_unknown", f"{REGISTRATIONS}/by-url", {"endpoint_url": url_of_length(2048)}, 404),
]


@pytest.mark.parametrize(
    ("case", "path", "params", "status"), LIST_QUERIES, ids=[case for case, _, _, _ in LIST_QUERIES]
)
async def test_query_parameter_bounds(
    api: httpx.AsyncClient, user_token: TokenFactory, case: str, path: str, params: dict[str, str], status: int
) -> None:
    response = await api.get(path, params=params, headers=bearer(user_token()))

    assert response.status_code == status, response.text
    if status == 400:
        body = assert_error(response, 400, "INVALID_QUERY")
        assert set(body["field_errors"]) == set(params)
    elif status == 200:
        page = response.json()
        assert page["limit"] == int(params.get("limit", 100))
        assert page["offset"] == int(params.get("offset", 0))
        assert len(page["results"]) <= page["limit"]


NUL_QUERIES: list[tuple[str, str, dict[str, str]]] = [
    ("list_search", REGISTRATIONS, {"search": f"a{NUL}b"}),
    ("list_status", REGISTRATIONS, {"status": f"Pending{NUL}"}),
    ("list_submitter_id", REGISTRATIONS, {"submitter_id": f"{uuid.uuid4()}{NUL}"}),
    ("list_limit", REGISTRATIONS, {"limit": f"10{NUL}"}),
    ("list_offset", REGISTRATIONS, {"offset": f"{NUL}0"}),
    ("list_unknown_parameter", REGISTRATIONS, {"cache": f"x{NUL}"}),
    ("list_parameter_name", REGISTRATIONS, {f"sea{NUL}rch": "x"}),
    ("my_status", f"{REGISTRATIONS}/my", {"status": f"{NUL}"}),
    ("my_limit", f"{REGISTRATIONS}/my", {"limit": f"1{NUL}"}),
    ("by_url", f"{REGISTRATIONS}/by-url", {"endpoint_url": f"https://example.com/{NUL}"}),
    ("audit_registration_id", AUDIT_LOGS, {"registration_id": f"{uuid.uuid4()}{NUL}"}),
    ("audit_user_id", AUDIT_LOGS, {"user_id": f"{NUL}{uuid.uuid4()}"}),
    ("audit_action", AUDIT_LOGS, {"action": f"Created{NUL}"}),
    ("audit_from", AUDIT_LOGS, {"from": f"2025-01-01T00:00:00Z{NUL}"}),
    ("audit_to", AUDIT_LOGS, {"to": f"2025-01-01{NUL}"}),
    ("audit_limit", AUDIT_LOGS, {"limit": f"5{NUL}"}),
]


@pytest.mark.parametrize(("case", "path", "params"), NUL_QUERIES, ids=[case for case, _, _ in NUL_QUERIES])
async def test_query_parameter_with_a_nul_character_returns_400(
    api: httpx.AsyncClient, user_token: TokenFactory, case: str, path: str, params: dict[str, str]
) -> None:
    response = await api.get(path, params=params, headers=bearer(user_token(admin=True)))

    assert_error(response, 400, "INVALID_QUERY")


async def test_search_with_a_nul_character_percent_encoded_in_the_raw_query_returns_400(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    response = await api.get(f"{REGISTRATIONS}?search=abc%00def", headers=bearer(user_token()))

    assert_error(response, 400, "INVALID_QUERY")


async def test_by_url_with_invalid_percent_encoding_is_not_a_500(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(f"{REGISTRATIONS}/by-url?endpoint_url=https%3A%2F%2Fx%ff%fe%ED%A0%80", headers=bearer(user_token()))

    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_QUERY", "NOT_FOUND")
