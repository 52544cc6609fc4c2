"""What the MCP Registry tests share: the v0.1 paths, the official `_meta` key and the vendored server.json schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

SERVERS = "/api/v0.1/servers"
OFFICIAL = "io.modelcontextprotocol.registry/official"
SERVER_VALIDATOR = Draft7Validator(
    json.loads((Path(__file__).parents[2] / "shared" / "schemas" / "server.schema.2025-12-11.json").read_text()),
    format_checker=FormatChecker(),
)


def assert_valid_server(server: dict[str, Any]) -> None:
    """The `server` object validates against the official schema (2025-12-11)."""
    errors = sorted(SERVER_VALIDATOR.iter_errors(server), key=str)
    assert not errors, [error.message for error in errors]


def official(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's official `_meta` (status, statusMessage, statusChangedAt, publishedAt, updatedAt, isLatest)."""
    meta: dict[str, Any] = entry["_meta"][OFFICIAL]
    return meta
