"""The Bicep templates in infra/, read with pycep-parser (the parser checkov uses) and evaluated with defaults.

pycep gives each file as JSON-like data: identifiers are `BicepElement` (a `str` subclass), string literals are
plain `str` (interpolations kept as raw `${...}` text), operators and functions are nested dicts. The evaluator
below computes what a deployment with default parameters (plus literal overrides from main.parameters.json, plus
keyword overrides in a test) would get: parameters and variables, module parameters followed from main.bicep into
the modules, module outputs (`postgres.outputs.port`) followed back, the operators and the handful of functions
the templates use. Anything else (resource properties, `tenant()`, `uniqueString()`) is `Unknown`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser
from pycep.models import BicepElement

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"

_PARSER = BicepParser(add_line_numbers=True)
_LINE_KEYS = {"__start_line__", "__end_line__"}


class Unknown:
    """A value the evaluator cannot compute statically (resource properties, tenant(), uniqueString())."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Unknown({self.text!r})"


@dataclass(frozen=True)
class Decl:
    """One top-level declaration: a param, var, output, resource or module."""

    name: str
    data: dict[str, Any]

    @property
    def decorators(self) -> dict[str, Any]:
        return {d["type"]: d.get("argument") for d in self.data.get("decorators", [])}

    @property
    def description(self) -> str:
        return str(self.decorators.get("description") or "")

    @property
    def lines(self) -> tuple[int, int]:
        return self.data["__start_line__"], self.data["__end_line__"]

    # resources and modules
    @property
    def type(self) -> str:
        return str(self.data.get("type", ""))

    @property
    def api_version(self) -> str:
        return str(self.data.get("api_version", ""))

    @property
    def existing(self) -> bool:
        return bool(self.data.get("existing"))

    @property
    def _wrapper(self) -> dict[str, Any]:
        config: dict[str, Any] = self.data["config"]
        if "loop_type" in config or set(config) == {"condition", "config"}:
            return config
        return {"config": config, "condition": None}

    @property
    def body(self) -> dict[str, Any]:
        """The object after `=` (inside a loop or an `if`, the object itself)."""
        body: dict[str, Any] = self._wrapper["config"]
        return body

    @property
    def condition(self) -> Any:
        return self._wrapper.get("condition")

    @property
    def loop(self) -> dict[str, Any] | None:
        loop: dict[str, Any] | None = self._wrapper.get("loop_type")
        return loop

    @property
    def module_path(self) -> str:
        return str(self.data["detail"]["path"])

    # params, vars, outputs
    @property
    def default(self) -> Any:
        return self.data.get("default")

    @property
    def value(self) -> Any:
        return self.data.get("value")


@dataclass(frozen=True)
class Template:
    path: Path
    raw: str
    tree: dict[str, Any]

    def _section(self, key: str) -> dict[str, Decl]:
        return {name: Decl(name, data) for name, data in self.tree.get(key, {}).items()}

    @property
    def target_scope(self) -> str | None:
        scope = self.tree.get("globals", {}).get("scope", {})
        return scope.get("value") if isinstance(scope, dict) else None

    @property
    def params(self) -> dict[str, Decl]:
        return self._section("parameters")

    @property
    def vars(self) -> dict[str, Decl]:
        return self._section("variables")

    @property
    def outputs(self) -> dict[str, Decl]:
        return self._section("outputs")

    @property
    def modules(self) -> dict[str, Decl]:
        return self._section("modules")

    def resources(self, type_: str | None = None) -> list[Decl]:
        return [d for d in self._section("resources").values() if type_ is None or d.type == type_]

    def resource(self, type_: str, name: str | None = None) -> Decl:
        found = [d for d in self.resources(type_) if name is None or d.body.get("name") == name]
        assert len(found) == 1, f"expected one {type_} {name or ''} in {self.path.name}, found {len(found)}"
        return found[0]

    def comments_of(self, decl: Decl) -> str:
        """The declaration's source lines with the comment lines right above it (checkov reads skip comments
        from inside the declaration)."""
        lines = self.raw.splitlines()
        start, end = decl.lines
        while start > 1 and lines[start - 2].lstrip().startswith(("//", "@")):
            start -= 1
        return "\n".join(lines[start - 1 : end])


@cache
def load(path: Path) -> Template:
    raw = path.read_text(encoding="utf-8")
    return Template(path, raw, _PARSER.parse(text=raw))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def module_call(path: Path) -> Decl | None:
    """The `module` declaration in main.bicep that deploys the file at path."""
    for decl in load(MAIN).modules.values():
        if (INFRA / decl.module_path).resolve() == path.resolve():
            return decl
    return None


def main_parameter_overrides() -> dict[str, Any]:
    """Values main.parameters.json gives: literals, and azd's `${VAR=default}` defaults (the default path)."""
    data = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    overrides: dict[str, Any] = {}
    for name, entry in data.get("parameters", {}).items():
        value = entry.get("value")
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            _, eq, default = value[2:-1].partition("=")
            if not eq:
                continue  # a value azd asks for or takes from the environment: no default to evaluate
            value = _typed_like(load(MAIN).params[name].data.get("type"), default)
        overrides[name] = value
    return overrides


def _typed_like(bicep_type: Any, text: str) -> Any:
    if bicep_type == "bool":
        assert text in {"true", "false"}, f"bool default {text!r}"
        return text == "true"
    if bicep_type == "int":
        return int(text)
    if bicep_type in {"array", "object"}:
        return json.loads(text)
    return text


# --------------------------------------------------------------------------------------------------
# Rendering (for structural assertions: "this setting is the parameter entraClientId")
# --------------------------------------------------------------------------------------------------


def text(node: Any) -> str:
    """A canonical Bicep-like rendering: identifiers bare, literals quoted, accessors dotted, calls f(...)."""
    if isinstance(node, BicepElement):
        return str(node)
    if isinstance(node, str):
        return "'" + node + "'"
    if isinstance(node, bool):
        return "true" if node else "false"
    if node is None:
        return "null"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(text(n) for n in node) + "]"
    if isinstance(node, dict):
        if "operator" in node:
            op = node["operator"]
            operands = list(op["operands"].values())
            if op["type"] == "property_accessor":
                return ".".join(text(o) for o in operands)
            return op["type"] + "(" + ", ".join(text(o) for o in operands) + ")"
        if "function" in node:
            fn = node["function"]
            args = [a for a in (fn.get("parameters") or {}).values() if a is not None]
            return fn["type"] + "(" + ", ".join(text(a) for a in args) + ")"
        return "{" + ", ".join(f"{k}: {text(v)}" for k, v in node.items() if k not in _LINE_KEYS) + "}"
    raise AssertionError(f"cannot render {node!r}")


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "equals": operator.eq,
    "not_equals": operator.ne,
    "greater_than": operator.gt,
    "greater_than_or_equals": operator.ge,
    "less_than": operator.lt,
    "less_than_or_equals": operator.le,
    "add": operator.add,
    "substract": operator.sub,
    "minus": operator.sub,
    "multiply": operator.mul,
    "divide": operator.floordiv,
    "modulo": operator.mod,
}


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Evaluator:
    def __init__(self, path: Path, overrides: dict[str, Any] | None = None, scope: dict[str, Any] | None = None):
        self.template = load(path)
        self.overrides = overrides or {}
        self.scope = scope or {}  # loop variables

    def _is_main(self) -> bool:
        return self.template.path.resolve() == MAIN.resolve()

    def name(self, name: str) -> Any:
        if name in self.scope:
            return self.scope[name]
        t = self.template
        if name in t.vars:
            return self.value(t.vars[name].value)
        if name in t.params:
            if not self._is_main():
                call = module_call(t.path)
                passed = call.body.get("params", {}) if call else {}
                if name in passed:
                    return Evaluator(MAIN, self.overrides).value(passed[name])
            else:
                if name in self.overrides:
                    return self.overrides[name]
                if name in main_parameter_overrides():
                    return main_parameter_overrides()[name]
            default = t.params[name].default
            return Unknown(name) if default is None else self.value(default)
        return Unknown(name)

    def value(self, node: Any) -> Any:
        if isinstance(node, BicepElement):
            return self.name(str(node))
        if isinstance(node, str):
            return self.interpolate(node) if "${" in node else node
        if isinstance(node, list):
            return [self.value(n) for n in node]
        if isinstance(node, dict):
            if "operator" in node and len(node) == 1:
                return self.operator(node["operator"])
            if "function" in node and len(node) == 1:
                return self.function(node["function"])
            return {k.strip("'"): self.value(v) for k, v in node.items() if k not in _LINE_KEYS}
        return node

    def interpolate(self, body: str) -> Any:
        parts: list[str] = []
        i = 0
        while i < len(body):
            if body.startswith("${", i):
                depth, j = 0, i + 1
                while True:
                    depth += {"{": 1, "}": -1}.get(body[j], 0)
                    if depth == 0:
                        break
                    j += 1
                inner = _PARSER.parse(text=f"var x = {body[i + 2 : j]}\n")["variables"]["x"]["value"]
                value = self.value(inner)
                if isinstance(value, Unknown):
                    return Unknown(body)
                parts.append(_to_string(value))
                i = j + 1
            else:
                parts.append(body[i])
                i += 1
        return "".join(parts)

    def operator(self, op: dict[str, Any]) -> Any:
        kind = op["type"]
        operands = list(op["operands"].values())
        if kind == "conditional":
            condition = self.value(operands[0])
            if isinstance(condition, Unknown):
                return Unknown(text({"operator": op}))
            return self.value(operands[1] if condition else operands[2])
        if kind == "property_accessor":
            return self.accessor(op)
        right = operands[-1]
        if kind in _BINARY and isinstance(right, dict) and right.get("operator", {}).get("type") == "conditional":
            # pycep 0.7.1 binds `?:` tighter than binary operators: `a > 0 ? x : y` arrives as `a > (0 ? x : y)`.
            # In Bicep the ternary has the lowest precedence, so put the comparison back into the condition.
            condition, then, other = right["operator"]["operands"].values()
            return self.operator(
                {
                    "type": "conditional",
                    "operands": {
                        "condition": {"operator": {"type": kind, "operands": {"a": operands[0], "b": condition}}},
                        "true_value": then,
                        "false_value": other,
                    },
                }
            )
        values = [self.value(o) for o in operands]
        if any(isinstance(v, Unknown) for v in values):
            return Unknown(text({"operator": op}))
        if kind == "not":
            return not values[0]
        if kind == "and":
            return all(values)
        if kind == "or":
            return any(values)
        if kind == "coalesce":
            return next((v for v in values if v is not None), None)
        if kind == "index_accessor":
            return values[0][values[1]]
        assert kind in _BINARY, f"operator {kind} is not evaluated (add it to tests/support/bicep.py)"
        return _BINARY[kind](values[0], values[1])

    def accessor(self, op: dict[str, Any]) -> Any:
        # pycep nests a.b.c as a.(b.c): flatten it into a path.
        path: list[Any] = []
        node: Any = {"operator": op}
        while isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
            first, rest = node["operator"]["operands"].values()
            path.append(first)
            node = rest
        path.append(node)
        head = path[0]
        if isinstance(head, BicepElement) and str(head) in self.template.modules and len(path) == 3:
            if str(path[1]) == "outputs":  # a module output: evaluate it in the module
                module = self.template.modules[str(head)]
                target = load(INFRA / module.module_path)
                return Evaluator(target.path, self.overrides).value(target.outputs[str(path[2])].value)
        if isinstance(head, BicepElement) and (str(head) in self.scope or str(head) in self.template.vars):
            value = self.value(head)
            for key in path[1:]:
                if isinstance(value, Unknown):
                    return value
                value = value[str(key)]
            return value
        return Unknown(".".join(text(p) for p in path))

    def function(self, fn: dict[str, Any]) -> Any:
        kind = fn["type"]
        raw_args = [a for a in (fn.get("parameters") or {}).values() if a is not None]
        args = [self.value(a) for a in raw_args]
        if any(isinstance(a, Unknown) for a in args) or kind not in _FUNCTIONS:
            return Unknown(text({"function": fn}))
        return _FUNCTIONS[kind](*args)


def _concat(*args: Any) -> Any:
    if isinstance(args[0], list):
        return [x for a in args for x in a]
    return "".join(_to_string(a) for a in args)


def _union(*args: Any) -> Any:
    if isinstance(args[0], dict):
        merged: dict[str, Any] = {}
        for a in args:
            merged.update(a)
        return merged
    out: list[Any] = []
    for a in args:
        out.extend(x for x in a if x not in out)
    return out


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "concat": _concat,
    "union": _union,
    "empty": lambda v: len(v) == 0,
    "string": _to_string,
    "int": int,
    "length": len,
    "min": lambda *a: min(a[0]) if len(a) == 1 and isinstance(a[0], list) else min(a),
    "max": lambda *a: max(a[0]) if len(a) == 1 and isinstance(a[0], list) else max(a),
    "take": lambda v, n: v[:n],
    "to_lower": lambda v: v.lower(),
    "contains": lambda container, item: item in container,
}


def resolve(path: Path, node: Any, **overrides: Any) -> Any:
    """The value of a template node in the file at path, with defaults and the given parameter overrides."""
    return Evaluator(path, overrides).value(node)


def resolve_in_loop(path: Path, decl: Decl, **overrides: Any) -> list[dict[str, Any]]:
    """Every instance of a resource declared with `[for item in array: {...}]`, evaluated."""
    loop = decl.loop
    assert loop and loop["type"] == "array", f"{decl.name} is not a loop over an array"
    items = resolve(path, loop["detail"]["array_name"], **overrides)
    item_name = loop["detail"]["item_name"]
    return [Evaluator(path, overrides, {item_name: item}).value(decl.body) for item in items]
