"""The local run's settings files: `local.settings.json` (or its committed example) and where they live."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local"  # ignored by git and by deployment: keys, tokens, the embedded database
# Settings only the local run reads (local.settings.json Values or the environment; the app never does).
LOCAL_RUN_SETTINGS = ("LOCAL_HOST_BASE_URL", "LOCAL_TOKENS_FILE")


def load_local_settings(path: Path | None = None) -> dict[str, Any]:
    """local.settings.json, or its committed example when no local copy exists."""
    for candidate in ([path] if path else [ROOT / "local.settings.json", ROOT / "local.settings.json.example"]):
        if candidate is not None and candidate.exists():
            data: dict[str, Any] = json.loads(candidate.read_text(encoding="utf-8"))
            return data
    return {}


def apply_local_values(values: Mapping[str, Any], environ: MutableMapping[str, str] | None = None) -> None:
    """Copy Values into the environment; like Core Tools, variables already set win."""
    target: MutableMapping[str, str] = os.environ if environ is None else environ
    for name, value in values.items():
        if name not in target and value is not None and str(value) != "":
            target[name] = str(value)
