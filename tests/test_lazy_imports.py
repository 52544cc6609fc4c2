"""shared.lazy_imports: a module named there runs on its first attribute read, once, and is the module imports see."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lazy_imports import lazy_module


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh package with `target` (records each run of its body in `runs`) and `runs`."""
    name = f"lazy_{uuid.uuid4().hex}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "runs.py").write_text("bodies = []\n", encoding="utf-8")
    (root / "target.py").write_text(f"from {name} import runs\nruns.bodies.append('target')\nVALUE = 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [module for module in sys.modules if module == name or module.startswith(name + ".")]:
        del sys.modules[module]


def test_the_module_runs_on_its_first_attribute_read_and_only_then(package: str) -> None:
    runs = importlib.import_module(f"{package}.runs")
    target = lazy_module(f"{package}.target")
    assert runs.bodies == []
    assert target.VALUE == 42
    assert runs.bodies == ["target"]
    assert target.VALUE == 42
    assert runs.bodies == ["target"]


def test_an_import_of_the_module_gets_the_same_object_and_runs_it_once(package: str) -> None:
    runs = importlib.import_module(f"{package}.runs")
    target = lazy_module(f"{package}.target")
    imported = importlib.import_module(f"{package}.target")
    parent = importlib.import_module(package)
    assert imported is target and parent.target is target
    assert imported.VALUE == 42
    assert runs.bodies == ["target"]


def test_a_module_already_loaded_is_returned_as_it_is(package: str) -> None:
    runs = importlib.import_module(f"{package}.runs")
    loaded = importlib.import_module(f"{package}.target")
    assert runs.bodies == ["target"]
    assert lazy_module(f"{package}.target") is loaded
    assert runs.bodies == ["target"]


def test_a_missing_module_is_refused_at_once(package: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        lazy_module(f"{package}.missing")
    assert f"{package}.missing" not in sys.modules
