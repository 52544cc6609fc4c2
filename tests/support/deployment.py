"""What a deployment uploads, and the project's own import graph.

`deployed_files` applies `.funcignore` the way Azure Functions Core Tools do (`func azure functionapp publish`
reads it with gitignore rules: `#` comments, `!` re-includes, a trailing `/` matches directories only, a
pattern with a `/` before its end is anchored at the project root, otherwise it matches at any depth; `*`,
`?`, `[...]` and `**`; a path is excluded when it or any folder above it is). `project_imports` reads every
import statement of a module with `ast`, including imports inside functions, and leaves out imports that
only type checkers run (`if TYPE_CHECKING:`).
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    negated: bool
    directories_only: bool


def _glob_to_regex(pattern: str) -> str:
    out, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("/**", index) and index + 3 == len(pattern):
            out += "/.*"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[" and "]" in pattern[index + 1 :]:
            end = pattern.index("]", index + 1)
            body = pattern[index + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return out


def parse_ignore_file(text: str) -> list[IgnoreRule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        directories_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        prefix = "" if anchored else "(?:.*/)?"
        rules.append(IgnoreRule(re.compile(f"^{prefix}{_glob_to_regex(line)}$"), negated, directories_only))
    return rules


def is_ignored(rules: Iterable[IgnoreRule], relative: str, *, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:
        if rule.directories_only and not is_dir:
            continue
        if rule.regex.match(relative):
            ignored = not rule.negated
    return ignored


def deployed_files(root: Path = ROOT) -> Iterator[Path]:
    """The files a deployment uploads, relative to `root` (an excluded folder is never entered)."""
    rules = parse_ignore_file((root / ".funcignore").read_text(encoding="utf-8"))
    for folder, dirs, files in os.walk(root):
        base = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not is_ignored(rules, (base / d).as_posix(), is_dir=True))
        for name in sorted(files):
            relative = base / name
            if not is_ignored(rules, relative.as_posix(), is_dir=False):
                yield relative


# ---------------------------------------------------------------- the project's import graph


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            assert isinstance(node, ast.If)
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module `path` imports at run time, anywhere in the file (`from a import b` counts as a.b too:
    b may be a submodule; `lazy_module("a.b")`, shared/lazy_imports.py, imports a.b on first use)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).rpartition(".")[0] if path.name != "__init__.py" else module_name(path, root)
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif _is_lazy_module_call(node):
            assert isinstance(node, ast.Call) and isinstance(node.args[0], ast.Constant)
            found.add(str(node.args[0].value))
    return found


def _is_lazy_module_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "lazy_module"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def project_modules(root: Path = ROOT, packages: Iterable[str] = ("shared", "devtools")) -> dict[str, Path]:
    modules = {"function_app": root / "function_app.py"}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def import_graph(modules: dict[str, Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    return {name: imported_modules(path, root) & set(modules) - {name} for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles
