"""Tool fingerprints: what a probe saw, in a form that changes exactly when a tool changes.

A tool's fingerprint is the SHA-256 of a canonical JSON of what a model reads and what a client sends: its
name, description, input schema and annotations (keys sorted, no insignificant whitespace, UTF-8, absent
and null alike). The set's fingerprint is the SHA-256 of the sorted `name:fingerprint` lines, so it does not
depend on the order a server lists its tools in. A changed description changes both: that is the "rug pull"
a probe after approval must catch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

FINGERPRINTED_FIELDS = ("name", "description", "inputSchema", "annotations")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def tool_fingerprint(tool: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the tool's name, description, input schema and annotations."""
    subject = {field: tool.get(field) for field in FINGERPRINTED_FIELDS}
    return "sha256:" + hashlib.sha256(canonical_json(subject)).hexdigest()


def tool_set_fingerprint(fingerprints: Mapping[str, str]) -> str:
    """`sha256:<hex>` over every tool's name and fingerprint, in name order."""
    lines = "".join(f"{name}\n{fingerprint}\n" for name, fingerprint in sorted(fingerprints.items()))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def tool_drift(approved: Mapping[str, str], current: Mapping[str, str]) -> dict[str, list[str]]:
    """The tools added, removed and changed (same name, other fingerprint) since the approved set."""
    return {
        "added": sorted(set(current) - set(approved)),
        "removed": sorted(set(approved) - set(current)),
        "changed": sorted(name for name in set(approved) & set(current) if approved[name] != current[name]),
    }


def fingerprints_by_name(tools: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {str(tool["name"]): str(tool["fingerprint"]) for tool in tools}
