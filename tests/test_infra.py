"""Static checks of the infrastructure templates (issue 9).

The Bicep CLI and Azure are not reachable from CI, so these tests read `infra/*.bicep` with a small
reader (declarations, object/array literals, and an evaluator for the handful of expressions the
templates use: parameters, variables, ternaries, comparisons, `concat`, `empty`, `string`), follow
module parameters from `main.bicep` into the modules, and assert the facts the issue lists using the
templates' *default* values (plus literal overrides from `main.parameters.json`). They also read
`host.json`, `local.settings.json.example`, `azure.yaml`, `sql/*.sql`, `function_app.py` and the app's
settings (`shared.settings.setting_names()`). No network, no database.
"""

from __future__ import annotations

import json
import operator
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.settings import setting_names

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
POSTGRES = INFRA / "modules" / "postgres.bicep"

# Settings Flex Consumption rejects or ignores (they come from functionAppConfig instead).
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
}
# siteConfig properties Flex does not support (runtime/scale live in functionAppConfig).
FLEX_FORBIDDEN_SITE_CONFIG = {
    "alwaysOn",
    "linuxFxVersion",
    "use32BitWorkerProcess",
    "functionAppScaleLimit",
    "numberOfWorkers",
    "javaVersion",
    "netFrameworkVersion",
    "pythonVersion",
}

# Settings the app reads that the Bicep deliberately does not set. One reason per name.
OPTIONAL_SETTINGS = {
    # Custom CA bundle for verify-full; the platform's system trust store has the Azure roots.
    "DB_SSL_ROOT_CERT": "system trust store is used on Azure",
    # Pool waits: the app's defaults (seconds) are the intended production values.
    "DB_ACQUIRE_TIMEOUT_S": "app default",
    "DB_COMMAND_TIMEOUT_S": "app default",
    # Token scope for Azure Database for PostgreSQL; the app default is the public-cloud scope.
    "DATABASE_ENTRA_TOKEN_SCOPE": "app default (public cloud)",
    # Loopback-only override for local runs; must never be set on Azure.
    "ENTRA_OPENID_CONFIG_URL": "local runs only",
    # Token-validation tuning: app defaults.
    "AUTH_LEEWAY_S": "app default",
    "JWKS_REFRESH_S": "app default",
    "JWKS_UNKNOWN_KID_COOLDOWN_S": "app default",
    "JWKS_FETCH_TIMEOUT_S": "app default",
    "AUTH_MAX_TOKEN_BYTES": "app default",
    "AUTH_CALLER_CACHE_SIZE": "app default",
    # Left unset so the EasyAuth second check follows WEBSITE_AUTH_ENABLED (platform-injected).
    "EASYAUTH_REQUIRED": "follows WEBSITE_AUTH_ENABLED",
    # Injected by App Service when authsettingsV2 is enabled; must not be set by hand.
    "WEBSITE_AUTH_ENABLED": "platform-injected",
    # App default INFO; change per deployment in the portal/CLI when debugging.
    "LOG_LEVEL": "app default",
    # Owners' contacts are personal data: the anonymous registry leaves them out unless an organisation opts in.
    "MCP_REGISTRY_PUBLISH_OWNER_CONTACT": "app default (off)",
    # Only MCP_SERVER_NAMESPACE (set from mcpServerNamespace) unless an organisation owns more namespaces.
    "MCP_SERVER_NAMESPACES": "app default (MCP_SERVER_NAMESPACE alone)",
    "APPROVAL_REVIEW_WINDOW_S": "app default",
}
# Settings the Bicep sets for someone other than shared.settings. One reason per name.
SET_FOR_OTHERS = {
    # The Functions host: identity-based AzureWebJobsStorage.
    "AzureWebJobsStorage__credential": "host",
    "AzureWebJobsStorage__clientId": "host",
    "AzureWebJobsStorage__blobServiceUri": "host",
    # The host and the worker's Azure Monitor exporter: Entra-authenticated ingestion.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "host + worker",
}

# max_connections by SKU (learn-pg concepts-limits); 15 are reserved for Azure.
MAX_CONNECTIONS = {
    "Standard_B1ms": 50,
    "Standard_B2s": 429,
    "Standard_B2ms": 859,
    "Standard_D2s_v3": 859,
    "Standard_D2ds_v4": 859,
    "Standard_D2ds_v5": 859,
    "Standard_D4s_v3": 1718,
    "Standard_D4ds_v4": 1718,
    "Standard_D4ds_v5": 1718,
}
RESERVED_CONNECTIONS = 15

STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor (Owner already covers the host)
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # Storage Account Contributor (would expose keys)
}


# --------------------------------------------------------------------------------------------------
# A small Bicep reader
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """An expression kept as text (identifiers, calls, ternaries, member access)."""

    text: str


@dataclass(frozen=True)
class Interp:
    """A string literal with ${...} interpolation, kept as its raw body."""

    text: str


@dataclass(frozen=True)
class ForLoop:
    header: str
    body: Any


@dataclass
class Decl:
    kind: str  # param | var | resource | module | output
    name: str
    type: str = ""  # param/output type, resource type, module path
    value: Any = None  # default / value / body
    decorators: dict[str, str] = field(default_factory=dict)
    condition: str | None = None
    existing: bool = False


class Unknown:
    """A value the evaluator cannot compute statically (resource properties, module outputs)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Unknown({self.text!r})"


def _skip_string(text: str, i: int) -> int:
    """Index just past the string literal starting at text[i] (a quote)."""
    if text.startswith("'''", i):
        end = text.find("'''", i + 3)
        assert end >= 0, "unterminated multi-line string"
        return end + 3
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            return i + 1
        if text.startswith("${", i):
            i = _skip_balanced(text, i + 1)
            continue
        i += 1
    raise AssertionError("unterminated string")


def _skip_balanced(text: str, i: int) -> int:
    """text[i] is an opening bracket; index just past its match (strings skipped)."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    stack = [pairs[text[i]]]
    i += 1
    while stack:
        assert i < len(text), "unbalanced brackets"
        ch = text[i]
        if ch == "'":
            i = _skip_string(text, i)
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            assert ch == stack.pop(), f"mismatched {ch!r}"
        i += 1
    return i


def strip_comments(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        if text[i] == "'":
            j = _skip_string(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
        elif text.startswith("/*", i):
            j = text.index("*/", i) + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _read_expr(text: str, i: int) -> tuple[str, int]:
    """Raw expression from i up to a depth-0 newline, comma or closing bracket."""
    start = i
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i = _skip_string(text, i)
        elif ch in "{[(":
            i = _skip_balanced(text, i)
        elif ch in "\n,)]}":
            break
        else:
            i += 1
    return text[start:i].strip(), i


def _whole(raw: str, opener: str) -> bool:
    return raw.startswith(opener) and _skip_balanced(raw, 0) == len(raw)


def _single_string(raw: str) -> bool:
    return raw.startswith("'") and _skip_string(raw, 0) == len(raw)


def parse_value(raw: str) -> Any:
    raw = raw.strip()
    if _whole(raw, "{"):
        return _parse_object(raw[1:-1])
    if _whole(raw, "["):
        inner = raw[1:-1].strip()
        if inner.startswith("for "):
            header, _, body = _split_top(inner, ":")
            return ForLoop(header.strip(), parse_value(body))
        return _parse_array(inner)
    if _single_string(raw):
        if raw.startswith("'''"):
            return raw[3:-3]
        body = raw[1:-1]
        return Interp(body) if "${" in body else body.replace("\\'", "'").replace("\\\\", "\\")
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if raw in {"true", "false"}:
        return raw == "true"
    if raw == "null":
        return None
    return Expr(raw)


def _parse_object(body: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    i = 0
    while True:
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
        if i >= len(body):
            return result
        if body[i] == "'":
            j = _skip_string(body, i)
            key = body[i + 1 : j - 1]
        else:
            m = re.compile(r"[A-Za-z_][\w]*").match(body, i)
            assert m, f"bad object key at {body[i : i + 40]!r}"
            key, j = m.group(0), m.end()
        colon = body.index(":", j)
        assert body[j:colon].strip() == "", f"expected ':' after {key!r}"
        raw, i = _read_expr(body, colon + 1)
        result[key] = parse_value(raw)


def _parse_array(body: str) -> list[Any]:
    items = []
    i = 0
    while True:
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
        if i >= len(body):
            return items
        raw, i = _read_expr(body, i)
        items.append(parse_value(raw))


def _split_top(text: str, sep: str) -> tuple[str, str, str]:
    """Split at the first depth-0 occurrence of sep (outside strings/brackets)."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i = _skip_string(text, i)
            continue
        if ch in "{[(":
            i = _skip_balanced(text, i)
            continue
        if text.startswith(sep, i):
            return text[:i], sep, text[i + len(sep) :]
        i += 1
    return text, "", ""


_DECL = re.compile(r"(?P<kind>param|var|resource|module|output)\s+(?P<name>\w+)\s*(?P<rest>[^\n]*)")


@dataclass
class BicepFile:
    path: Path
    text: str  # comments stripped
    raw: str
    decls: list[Decl]
    target_scope: str | None

    def _of(self, kind: str) -> dict[str, Decl]:
        return {d.name: d for d in self.decls if d.kind == kind}

    @property
    def params(self) -> dict[str, Decl]:
        return self._of("param")

    @property
    def vars(self) -> dict[str, Decl]:
        return self._of("var")

    @property
    def outputs(self) -> dict[str, Decl]:
        return self._of("output")

    @property
    def modules(self) -> dict[str, Decl]:
        return self._of("module")

    def resources(self, type_: str) -> list[Decl]:
        return [d for d in self.decls if d.kind == "resource" and d.type.split("@")[0] == type_]

    def resource(self, type_: str, name: str | None = None) -> Decl:
        found = [d for d in self.resources(type_) if name is None or _body(d).get("name") == name]
        assert len(found) == 1, f"expected one {type_} {name or ''} in {self.path.name}, found {len(found)}"
        return found[0]


def _body(decl: Decl) -> dict[str, Any]:
    value = decl.value.body if isinstance(decl.value, ForLoop) else decl.value
    assert isinstance(value, dict), f"{decl.kind} {decl.name} has no object body"
    return value


@cache
def load(path: Path) -> BicepFile:
    raw = path.read_text(encoding="utf-8")
    text = strip_comments(raw)
    decls: list[Decl] = []
    target = re.search(r"^targetScope\s*=\s*'(\w+)'", text, re.MULTILINE)
    decorators: dict[str, str] = {}
    i = 0
    while i < len(text):
        if text[i] in " \t\r\n":
            i += 1
            continue
        if text[i] == "@":
            dm = re.compile(r"@(\w+)").match(text, i)
            assert dm, f"bad decorator in {path.name}"
            i = dm.end()
            args = ""
            if text[i] == "(":
                j = _skip_balanced(text, i)
                args, i = text[i + 1 : j - 1].strip(), j
            decorators[dm.group(1)] = args
            continue
        m = _DECL.match(text, i)
        if m is None:  # targetScope and anything else at top level
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl + 1
            decorators = {}
            continue
        kind, name, rest = m.group("kind"), m.group("name"), m.group("rest")
        decl = Decl(kind, name, decorators=decorators)
        decorators = {}
        start = m.start("rest")
        end = m.end()
        if kind == "param":
            pm = re.match(r"(\w+)\s*(=)?", rest)
            assert pm, f"bad param {name}"
            decl.type = pm.group(1)
            if pm.group(2):
                value_raw, end = _read_expr(text, start + pm.end())
                decl.value = parse_value(value_raw)
        elif kind in {"var", "output"}:
            om = re.match(r"(?:(\w+)\s*)?=", rest) if kind == "output" else re.match(r"=", rest)
            assert om, f"bad {kind} {name}"
            if kind == "output":
                decl.type = om.group(1)
            value_raw, end = _read_expr(text, start + om.end())
            decl.value = parse_value(value_raw)
        else:
            rm = re.match(r"'([^']+)'\s*(existing\s*)?=\s*(?:if\s*)?", rest)
            assert rm, f"bad {kind} {name}"
            decl.type, decl.existing = rm.group(1), bool(rm.group(2))
            j = start + rm.end()
            if text[j] == "(":  # condition
                k = _skip_balanced(text, j)
                decl.condition = text[j + 1 : k - 1].strip()
                j = k
                while text[j] in " \t":
                    j += 1
            value_raw, end = _read_expr(text, j)
            decl.value = parse_value(value_raw)
        decls.append(decl)
        i = end
    return BicepFile(path, text, raw, decls, target.group(1) if target else None)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


# --------------------------------------------------------------------------------------------------
# Evaluation with defaults, following module parameters from main.bicep
# --------------------------------------------------------------------------------------------------


def main_parameter_overrides() -> dict[str, Any]:
    """Literal values from main.parameters.json (azd ${VAR} substitutions are not literals)."""
    data = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    overrides = {}
    for name, entry in data.get("parameters", {}).items():
        value = entry.get("value")
        if isinstance(value, str) and "${" in value:
            continue
        overrides[name] = value
    return overrides


def module_call(path: Path) -> Decl | None:
    main = load(MAIN)
    for decl in main.modules.values():
        if (INFRA / decl.type).resolve() == path.resolve():
            return decl
    return None


_OPERATORS: dict[str, Any] = {
    "||": lambda a, b: a or b,
    "&&": lambda a, b: a and b,
    "!=": operator.ne,
    "==": operator.eq,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


class Evaluator:
    def __init__(self, path: Path, overrides: dict[str, Any] | None = None) -> None:
        self.file = load(path)
        self.overrides = overrides or {}

    def _parent(self) -> tuple[Evaluator, dict[str, Any]] | None:
        if self.file.path.resolve() == MAIN.resolve():
            return None
        call = module_call(self.file.path)
        if call is None:
            return None
        return Evaluator(MAIN, self.overrides), _body(call).get("params", {})

    def name(self, name: str) -> Any:
        f = self.file
        if name in f.vars:
            return self.value(f.vars[name].value)
        if name in f.params:
            parent = self._parent()
            if parent is None:
                if name in self.overrides:
                    return self.overrides[name]
                if f.path.resolve() == MAIN.resolve() and name in main_parameter_overrides():
                    return main_parameter_overrides()[name]
            elif name in parent[1]:
                return parent[0].value(parent[1][name])
            default = f.params[name].value
            return Unknown(name) if default is None else self.value(default)
        return Unknown(name)

    def value(self, value: Any) -> Any:
        if isinstance(value, Expr):
            return self.expr(value.text)
        if isinstance(value, Interp):
            return self.interp(value.text)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def interp(self, body: str) -> Any:
        parts: list[str] = []
        i = 0
        while i < len(body):
            if body.startswith("${", i):
                j = _skip_balanced(body, i + 1)
                inner = self.expr(body[i + 2 : j - 1])
                if isinstance(inner, Unknown):
                    return Unknown(body)
                parts.append(_to_string(inner))
                i = j
            else:
                parts.append(body[i])
                i += 1
        return "".join(parts)

    def expr(self, text: str) -> Any:
        text = text.strip()
        if _whole(text, "("):
            return self.expr(text[1:-1])
        cond, q, rest = _split_top(text, "?")
        if q:
            then, colon, other = _split_ternary(rest)
            assert colon, f"bad ternary {text!r}"
            c = self.expr(cond)
            if isinstance(c, Unknown):
                return Unknown(text)
            return self.expr(then) if c else self.expr(other)
        for op in ("||", "&&", "!=", "==", ">=", "<=", ">", "<"):
            left, found, right = _split_top(text, op)
            if found:
                a, b = self.expr(left), self.expr(right)
                if isinstance(a, Unknown) or isinstance(b, Unknown):
                    return Unknown(text)
                return _OPERATORS[op](a, b)
        if text.startswith("!"):
            v = self.expr(text[1:])
            return Unknown(text) if isinstance(v, Unknown) else not v
        call = re.fullmatch(r"(\w+)\((.*)\)", text, re.DOTALL)
        if call and _whole(text[len(call.group(1)) :], "("):
            args = [self.expr(a) for a in _split_args(call.group(2))]
            if any(isinstance(a, Unknown) for a in args):
                return Unknown(text)
            fn = call.group(1)
            if fn == "concat":
                return [x for a in args for x in a] if isinstance(args[0], list) else "".join(map(str, args))
            if fn == "empty":
                return len(args[0]) == 0
            if fn == "string":
                return _to_string(args[0])
            return Unknown(text)
        if text in {"true", "false", "null"} or re.fullmatch(r"-?\d+", text):
            return parse_value(text)
        if re.fullmatch(r"[A-Za-z_]\w*", text):
            return self.name(text)
        if re.fullmatch(r"[A-Za-z_][\w.()]*", text):
            return Unknown(text)  # member access, environment(), resource properties
        value = parse_value(text)
        return Unknown(text) if isinstance(value, Expr) else self.value(value)


def _split_ternary(rest: str) -> tuple[str, str, str]:
    # `then : else` where `then` may itself contain a nested ternary.
    depth = 0
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == "'":
            i = _skip_string(rest, i)
            continue
        if ch in "{[(":
            i = _skip_balanced(rest, i)
            continue
        if ch == "?":
            depth += 1
        elif ch == ":":
            if depth == 0:
                return rest[:i], ":", rest[i + 1 :]
            depth -= 1
        i += 1
    return rest, "", ""


def _split_args(text: str) -> list[str]:
    args = []
    while text.strip():
        head, sep, text = _split_top(text, ",")
        args.append(head)
        if not sep:
            break
    return args


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(path: Path, value: Any, **overrides: Any) -> Any:
    return Evaluator(path, overrides).value(value)


def app_settings() -> dict[str, Any]:
    return _body(load(FUNCTION_APP).resource("Microsoft.Web/sites/config", "appsettings"))["properties"]


def site() -> dict[str, Any]:
    return _body(load(FUNCTION_APP).resource("Microsoft.Web/sites"))


def auth_settings() -> dict[str, Any]:
    return _body(load(FUNCTION_APP).resource("Microsoft.Web/sites/config", "authsettingsV2"))["properties"]


def host_json() -> dict[str, Any]:
    return json.loads((ROOT / "host.json").read_text(encoding="utf-8"))


def route_prefix() -> str:
    return host_json().get("extensions", {}).get("http", {}).get("routePrefix", "api")


# --------------------------------------------------------------------------------------------------
# The reader itself
# --------------------------------------------------------------------------------------------------


def test_reader_understands_the_constructs_used() -> None:
    assert parse_value("{\n a: 1\n b: 'x'\n c: [\n  true\n  null\n ]\n}") == {"a": 1, "b": "x", "c": [True, None]}
    assert parse_value("'api://${id}'") == Interp("api://${id}")
    assert strip_comments("a: 'http://x' // c\n") == "a: 'http://x' \n"
    ev = Evaluator(MAIN)
    assert ev.expr("1 > 0 ? concat(['a'], ['b']) : []") == ["a", "b"]
    assert ev.expr("empty('') ? 'x' : 'y'") == "x"
    assert ev.expr("!true") is False


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_avoids_constructs_checkov_cannot_parse(path: Path) -> None:
    text = load(path).text
    assert "br/public:" not in text and "br:" not in text, "registry modules hide resources from checkov"
    assert "=>" not in text, "lambdas (map/filter/...) break pycep 0.5.1"
    for keyword in ("import", "type", "func", "assert", "extension"):
        assert not re.search(rf"^\s*{keyword}\s", text, re.MULTILINE), f"`{keyword}` declarations break pycep 0.5.1"
    assert "..." not in text, "spread breaks pycep 0.5.1"
    assert not re.search(r"^param\s+\w+\s+\w+\?", text, re.MULTILINE), "nullable types break pycep 0.5.1"
    assert "resourceInput<" not in text and "resourceOutput<" not in text


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_parameter_is_described_and_secrets_are_secure(path: Path) -> None:
    f = load(path)
    assert f.params or path.name == "main.bicep"
    for name, param in f.params.items():
        assert param.decorators.get("description", "").strip("'\""), f"{path.name}: param {name} has no @description"
        if re.search(r"password|secret|connectionstring|key$", name, re.IGNORECASE) and name != (
            "applicationInsightsConnectionString"
        ):
            assert "secure" in param.decorators, f"{path.name}: param {name} looks secret but is not @secure()"
            assert param.value is None, f"{path.name}: @secure() param {name} must not have a default"


def test_modules_exist_and_get_every_required_parameter() -> None:
    main = load(MAIN)
    assert main.target_scope == "subscription"
    expected = {"identity", "monitoring", "storage", "rbac", "postgres", "functionapp"}
    paths = {Path(m.type).stem for m in main.modules.values()}
    assert expected <= paths
    for decl in main.modules.values():
        module_path = INFRA / decl.type
        assert module_path.exists(), f"module {decl.name}: {decl.type} is missing"
        module = load(module_path)
        passed = set(_body(decl).get("params", {}))
        unknown = passed - set(module.params)
        assert not unknown, f"module {decl.name} passes unknown params {unknown}"
        required = {n for n, p in module.params.items() if p.value is None}
        assert required <= passed, f"module {decl.name} misses required params {required - passed}"


def test_names_come_from_a_resource_token() -> None:
    main = load(MAIN)
    assert "uniqueString(" in main.vars["resourceToken"].value.text
    for decl in main.modules.values():
        name = _body(decl).get("params", {}).get("name")
        if name is not None:
            assert isinstance(name, Interp | Expr), f"module {decl.name} has a fixed name"
            text = name.text
            token_vars = {"resourceToken", "functionAppName"}
            assert any(v in text for v in token_vars), f"module {decl.name}: name {text!r} has no resourceToken"


# --------------------------------------------------------------------------------------------------
# Function app on Flex Consumption
# --------------------------------------------------------------------------------------------------


def test_plan_is_flex_consumption_linux() -> None:
    plan = _body(load(FUNCTION_APP).resource("Microsoft.Web/serverfarms"))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True


def test_runtime_is_python_311_on_linux() -> None:
    s = site()
    assert s["kind"] == "functionapp,linux"
    runtime = s["properties"]["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    assert resolve(FUNCTION_APP, runtime["version"]) == "3.11"


def test_scale_and_concurrency_defaults() -> None:
    scale = site()["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert resolve(FUNCTION_APP, scale["instanceMemoryMB"]) in {512, 2048, 4096}
    assert 1 <= resolve(FUNCTION_APP, scale["maximumInstanceCount"]) <= 10
    # Python's platform default is 1 concurrent request per instance; the handlers are async.
    assert resolve(FUNCTION_APP, scale["triggers"]["http"]["perInstanceConcurrency"]) >= 8
    # Always-ready instances are optional: none by default, an http group when asked for.
    assert resolve(FUNCTION_APP, scale["alwaysReady"]) == []
    assert resolve(FUNCTION_APP, scale["alwaysReady"], alwaysReadyInstanceCount=1) == [
        {"name": "http", "instanceCount": 1}
    ]
    assert "alwaysReadyInstanceCount" in load(MAIN).params


def test_deployment_and_host_storage_use_the_identity_without_keys() -> None:
    deployment = site()["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert deployment["authentication"]["userAssignedIdentityResourceId"] == Expr("identityId")
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == Expr("identityClientId")
    assert settings["AzureWebJobsStorage__blobServiceUri"] == Expr("storageBlobEndpoint")
    assert "AzureWebJobsStorage" not in settings, "no connection string: identity-based host storage"
    storage = _body(load(INFRA / "modules" / "storage.bicep").resource("Microsoft.Storage/storageAccounts"))
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["allowBlobPublicAccess"] is False
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"


def test_site_is_hardened() -> None:
    s = site()
    props = s["properties"]
    assert props["httpsOnly"] is True
    config = props["siteConfig"]
    assert config["minTlsVersion"] in {"1.2", "1.3"}
    assert config.get("remoteDebuggingEnabled") is False
    assert config.get("ftpsState", "Disabled") == "Disabled"
    # FTP (and SCM basic-auth) publishing is off.
    policies = load(FUNCTION_APP).resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {_body(p)["name"]: _body(p)["properties"]["allow"] for p in policies}
    assert by_name.get("ftp") is False
    assert by_name.get("scm") is False
    assert s["identity"]["type"] == "UserAssigned"


def test_site_config_is_minimal_on_flex() -> None:
    config = site()["properties"]["siteConfig"]
    assert not set(config) & FLEX_FORBIDDEN_SITE_CONFIG
    assert "appSettings" not in config, "app settings live in the appsettings config resource"


def test_forbidden_flex_settings_are_absent() -> None:
    assert not set(app_settings()) & FLEX_FORBIDDEN_SETTINGS
    for path in bicep_files():
        text = load(path).text  # comments stripped: a comment may name them
        for name in FLEX_FORBIDDEN_SETTINGS:
            assert not re.search(rf"\b{name}\b", text), f"{path.name} sets {name}, which Flex forbids"


# --------------------------------------------------------------------------------------------------
# CORS and EasyAuth
# --------------------------------------------------------------------------------------------------


def test_cors_choice_any_origin_without_credentials() -> None:
    cors = site()["properties"]["siteConfig"]["cors"]
    # Bearer tokens only, never cookies: credentials are never allowed, whatever the origin list.
    assert cors["supportCredentials"] is False
    # Default: any origin, which the SPA and the anonymous MCP Registry clients both need.
    assert resolve(FUNCTION_APP, cors["allowedOrigins"]) == ["*"]
    # The narrowing knob exists for deployments without the registry routes.
    assert load(MAIN).params["corsAllowedOrigins"].type == "array"
    for path in bicep_files():
        values = re.findall(r"supportCredentials\s*:\s*(\S+)", load(path).text)
        assert set(values) <= {"false"}, f"{path.name}: supportCredentials must stay false"
    # The choice and its reasoning are written down for the README.
    deploy = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "supportCredentials" in deploy and "corsAllowedOrigins" in deploy


def test_easyauth_protects_the_api_with_entra() -> None:
    auth = auth_settings()
    assert auth["platform"]["enabled"] is True
    validation = auth["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    assert auth["httpSettings"]["requireHttps"] is True
    assert auth["login"]["tokenStore"]["enabled"] is False
    aad = auth["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    registration = aad["registration"]
    assert registration["clientId"] == Expr("entraClientId")
    assert isinstance(registration["openIdIssuer"], Interp)
    assert registration["openIdIssuer"].text.endswith("${entraTenantId}/v2.0")
    assert "clientSecretSettingName" not in registration, "bearer-only API: no client secret"
    assert aad["validation"]["allowedAudiences"] == [Expr("entraClientId"), Interp("api://${entraClientId}")]
    # The module's client id and tenant are the deployment's.
    call = _body(module_call(FUNCTION_APP))["params"]  # type: ignore[arg-type]
    assert call["entraClientId"] == Expr("entraClientId")
    assert call["entraTenantId"] == Expr("tenantId")
    assert "tenant().tenantId" in load(MAIN).vars["tenantId"].value.text


def _covered(path: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/*") and path.lower().startswith(pattern[:-1].lower()):
            return True
        if path.lower() == pattern.lower():
            return True
    return False


def test_easyauth_excludes_the_anonymous_routes() -> None:
    excluded = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"])
    assert isinstance(excluded, list)
    for path in ("/api/health", "/api/openapi.json", "/api/v0.1/servers", "/api/v0.1/servers/*"):
        assert path in excluded, f"{path} must be reachable without a token"
    assert _covered("/api/v0.1/servers/com.contoso%2Fweather/versions/latest", excluded)
    # Nothing else is anonymous.
    assert not _covered("/api/registrations", excluded)
    assert not _covered("/api/audit-logs", excluded)
    # Excluded paths are request paths: they carry host.json's route prefix.
    prefix = "/" + route_prefix().strip("/")
    assert all(p.startswith(prefix + "/") for p in excluded)
    # Without the registry routes only health and the API description (document and docs page) stay anonymous.
    narrowed = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"], mcpRegistryEnabled=False)
    assert sorted(narrowed) == ["/api/docs", "/api/docs/*", "/api/health", "/api/openapi.json"]


def test_every_public_route_of_the_app_is_excluded_from_easyauth() -> None:
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    excluded = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"])
    prefix = "/" + route_prefix().strip("/")
    public_routes = []
    for m in re.finditer(
        r"@app\.route\(\s*route\s*=\s*\"([^\"]*)\"[^)]*\)(?P<decos>(?:\s*@[^\n]*)*)\s*(?:async\s+)?def", source
    ):
        decorators = m.group("decos")
        # Public = marked public, or carrying no authentication decorator at all.
        if re.search(r"@(public|anonymous)\b", decorators) or not re.search(
            r"@(authenticated|admin_only|admin|requires_\w+)\b", decorators
        ):
            route = re.sub(r"\{[^}]*\}", "x", m.group(1))
            public_routes.append(f"{prefix}/{route}")
    assert public_routes, "function_app.py declares no public route (expected at least /api/health)"
    for route in public_routes:
        assert _covered(route, excluded), f"public route {route} is blocked by EasyAuth"


def test_app_settings_describe_the_entra_api() -> None:
    settings = app_settings()
    assert settings["ENTRA_TENANT_ID"] == Expr("entraTenantId")
    assert settings["ENTRA_CLIENT_ID"] == Expr("entraClientId")
    assert settings["ENTRA_ADMIN_ROLE"] == Expr("entraAdminRole")
    assert settings["ENTRA_ADMIN_GROUP_ID"] == Expr("entraAdminGroupId")
    assert resolve(FUNCTION_APP, settings["ENTRA_ADMIN_ROLE"]) == "Admin"
    assert resolve(FUNCTION_APP, settings["ENTRA_ADMIN_GROUP_ID"]) == ""  # empty = unset for the app


# --------------------------------------------------------------------------------------------------
# Settings the app reads
# --------------------------------------------------------------------------------------------------


def test_every_setting_the_app_reads_is_set_or_optional() -> None:
    read = setting_names()
    set_by_bicep = set(app_settings())
    missing = read - set_by_bicep - set(OPTIONAL_SETTINGS)
    assert not missing, f"settings the app reads but the Bicep neither sets nor lists as optional: {missing}"
    # Keep the optional list honest: every entry is read by the app and not also set by the Bicep.
    assert set(OPTIONAL_SETTINGS) <= read, f"stale OPTIONAL_SETTINGS: {set(OPTIONAL_SETTINGS) - read}"
    assert not set(OPTIONAL_SETTINGS) & set_by_bicep
    # And the Bicep sets nothing the app, the host or the worker does not use.
    extra = set_by_bicep - read - set(SET_FOR_OTHERS)
    assert not extra, f"app settings nobody reads: {extra}"


def test_database_settings_use_entra_and_verified_tls() -> None:
    settings = app_settings()
    assert settings["DATABASE_URL"] == Interp(
        "postgresql://${identityName}@${postgresHost}:${postgresPort}/${postgresDatabaseName}"
    )
    assert settings["DATABASE_AUTH"] == "entra"
    assert settings["DB_SSL"] == "verify-full"
    assert settings["AZURE_CLIENT_ID"] == Expr("identityClientId")
    assert resolve(FUNCTION_APP, settings["DB_POOL_MIN_SIZE"]) == "0"
    assert resolve(FUNCTION_APP, settings["DB_POOL_MAX_SIZE"]) == str(resolve(MAIN, Expr("dbPoolMaxSize")))
    # Behind PgBouncer (transaction pooling) asyncpg's statement cache must be off.
    assert resolve(FUNCTION_APP, settings["DB_STATEMENT_CACHE_SIZE"], postgresSkuTier="GeneralPurpose") == "0"
    assert "administratorLoginPassword" not in load(POSTGRES).text


def test_postgres_port_follows_pgbouncer() -> None:
    port = load(POSTGRES).outputs["port"].value
    assert resolve(POSTGRES, port) == 5432  # default Burstable: no PgBouncer
    assert resolve(POSTGRES, port, postgresSkuTier="GeneralPurpose") == 6432
    assert _body(module_call(FUNCTION_APP))["params"]["postgresPort"] == Expr("postgres.outputs.port")  # type: ignore[arg-type]


def test_telemetry_is_configured_by_the_worker_with_entra_ingestion() -> None:
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == Expr("applicationInsightsConnectionString")
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == Interp(
        "ClientId=${identityClientId};Authorization=AAD"
    )
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    monitoring = load(INFRA / "modules" / "monitoring.bicep")
    insights = _body(monitoring.resource("Microsoft.Insights/components"))["properties"]
    assert insights["DisableLocalAuth"] is True
    assert insights["WorkspaceResourceId"] == Expr("logAnalytics.id")


# --------------------------------------------------------------------------------------------------
# Identity and roles
# --------------------------------------------------------------------------------------------------


def test_one_user_assigned_identity() -> None:
    identities = [
        d
        for path in bicep_files()
        for d in load(path).resources("Microsoft.ManagedIdentity/userAssignedIdentities")
        if not d.existing
    ]
    assert len(identities) == 1


def test_role_assignments_are_least_privilege() -> None:
    roles: dict[str, str] = {}
    for path in bicep_files():
        f = load(path)
        for decl in f.resources("Microsoft.Authorization/roleAssignments"):
            props = _body(decl)["properties"]
            role_expr = props["roleDefinitionId"].text
            var = re.search(r"'Microsoft.Authorization/roleDefinitions',\s*(\w+)\)", role_expr)
            assert var, role_expr
            role_id = resolve(path, Expr(var.group(1)))
            roles[role_id] = _body(decl)["scope"].text
            assert props["principalType"] == "ServicePrincipal"
    assert roles.get(STORAGE_BLOB_DATA_OWNER) == "storage"
    assert roles.get(MONITORING_METRICS_PUBLISHER) == "applicationInsights"
    assert not set(roles) & BROAD_ROLES
    vaults = [d for p in bicep_files() for d in load(p).resources("Microsoft.KeyVault/vaults")]
    assert (KEY_VAULT_SECRETS_USER in roles) == bool(vaults), "Key Vault Secrets User only with a vault"
    # Role assignments exist before the app starts using storage.
    assert Expr("rbac") in _body(module_call(FUNCTION_APP)).get("dependsOn", [])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


def test_postgres_server_defaults_and_entra_only_auth() -> None:
    server = _body(load(POSTGRES).resource("Microsoft.DBforPostgreSQL/flexibleServers"))
    props = server["properties"]
    assert props["authConfig"]["activeDirectoryAuth"] == "Enabled"
    assert props["authConfig"]["passwordAuth"] == "Disabled"
    assert props["storage"]["autoGrow"] == "Enabled"
    assert 7 <= resolve(POSTGRES, props["backup"]["backupRetentionDays"]) <= 35
    assert resolve(POSTGRES, props["highAvailability"]["mode"]) == "Disabled"
    assert resolve(POSTGRES, props["highAvailability"]["mode"], postgresZoneRedundantHa=True) == "ZoneRedundant"
    assert resolve(POSTGRES, server["sku"]) == {"name": "Standard_B1ms", "tier": "Burstable"}
    assert resolve(POSTGRES, props["version"]) in {"14", "15", "16", "17"}
    main = load(MAIN)
    for name in ("postgresVersion", "postgresSkuName", "postgresSkuTier", "postgresZoneRedundantHa"):
        assert name in main.params
    assert "GeneralPurpose" in main.params["postgresSkuName"].decorators["description"]


def test_postgres_configurations_are_serialized() -> None:
    f = load(POSTGRES)
    (configurations,) = f.resources("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    assert isinstance(configurations.value, ForLoop)
    assert configurations.decorators.get("batchSize") == "1"
    (firewall,) = f.resources("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")
    assert firewall.decorators.get("batchSize") == "1"
    assert Expr("firewall") in _body(configurations)["dependsOn"]
    # The Entra administrator is a separate resource created after the configurations.
    admin = f.resource("Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    assert _body(admin)["parent"] == Expr("server")
    assert Expr("configurations") in _body(admin)["dependsOn"]


def _server_parameters(**overrides: Any) -> dict[str, str]:
    rows = resolve(POSTGRES, Expr("serverParameters"), **overrides)
    return {row["name"]: row["value"] for row in rows}


def test_tls_required_and_pgbouncer_only_off_burstable() -> None:
    default = _server_parameters()
    assert default["require_secure_transport"] == "on"
    assert "pgbouncer.enabled" not in default  # Burstable has no built-in PgBouncer
    general = _server_parameters(postgresSkuTier="GeneralPurpose")
    assert general["pgbouncer.enabled"] == "true"
    assert general["require_secure_transport"] == "on"
    for path in bicep_files():
        assert not re.search(r"require_secure_transport'\s*\n\s*value:\s*'off'", load(path).text)


def test_extension_allow_list_covers_every_created_extension() -> None:
    created = set()
    for sql in sorted((ROOT / "sql").glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", sql.read_text(encoding="utf-8"))
        for m in re.finditer(r"CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([\w-]+)\"?", text, re.IGNORECASE):
            created.add(m.group(1).upper())
    assert created, "expected at least pg_trgm in sql/"
    allowed = {e.strip().upper() for e in _server_parameters()["azure.extensions"].split(",") if e.strip()}
    assert created <= allowed, f"extensions missing from azure.extensions: {created - allowed}"


def test_firewall_has_no_all_azure_rule_by_default() -> None:
    assert resolve(MAIN, Expr("postgresFirewallRules")) == []
    assert resolve(MAIN, Expr("postgresAllowAzureServices")) is False
    rules = resolve(POSTGRES, Expr("allFirewallRules"))
    assert rules == []
    opened = resolve(POSTGRES, Expr("allFirewallRules"), postgresAllowAzureServices=True)
    assert opened[0]["startIpAddress"] == "0.0.0.0"
    # Private networking is a parameterised option.
    assert load(MAIN).params["privateNetworking"].value is False
    assert load(MAIN).modules["network"].condition == "privateNetworking"


def test_connection_budget_fits_the_default_server() -> None:
    main_scale = site()["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    instances = resolve(FUNCTION_APP, main_scale["maximumInstanceCount"])
    pool_max = int(resolve(FUNCTION_APP, app_settings()["DB_POOL_MAX_SIZE"]))
    sku = resolve(MAIN, Expr("postgresSkuName"))
    pgbouncer = resolve(MAIN, Expr("pgBouncerEnabled"))
    assert isinstance(instances, int) and isinstance(sku, str)
    # Flex runs one worker process per instance (FUNCTIONS_WORKER_PROCESS_COUNT is not valid there).
    needed = instances * pool_max
    if pgbouncer:
        assert resolve(POSTGRES, load(POSTGRES).outputs["port"].value, postgresSkuTier="GeneralPurpose") == 6432
    else:
        assert sku in MAX_CONNECTIONS, f"add {sku}'s max_connections to MAX_CONNECTIONS"
        usable = MAX_CONNECTIONS[sku] - RESERVED_CONNECTIONS
        assert needed < usable, f"{instances} instances x {pool_max} connections >= {usable} usable on {sku}"


def test_outputs_give_the_frontend_what_it_needs() -> None:
    outputs = load(MAIN).outputs
    for name in ("API_BASE_URL", "ENTRA_CLIENT_ID", "ENTRA_TENANT_ID", "ENTRA_API_SCOPE", "SERVICE_API_NAME"):
        assert name in outputs
    assert outputs["API_BASE_URL"].value == Expr("functionApp.outputs.url")
    fn_url = load(FUNCTION_APP).outputs["url"].value
    assert fn_url == Interp("https://${site.properties.defaultHostName}/" + route_prefix().strip("/"))
    assert outputs["ENTRA_API_SCOPE"].value == Interp("api://${entraClientId}/${entraApiScopeName}")
    # The hook needs these.
    for name in (
        "AZURE_RESOURCE_GROUP",
        "POSTGRES_SERVER_NAME",
        "POSTGRES_HOST",
        "POSTGRES_DATABASE",
        "POSTGRES_ADMIN_NAME",
        "APP_IDENTITY_NAME",
    ):
        assert name in outputs
    hook = (INFRA / "hooks" / "postprovision.sh").read_text(encoding="utf-8")
    for name in set(re.findall(r"\$\{(\w+):\?", hook)):
        assert name in outputs, f"the hook requires {name}, which main.bicep does not output"


# --------------------------------------------------------------------------------------------------
# azd, the hook and the files the platform reads
# --------------------------------------------------------------------------------------------------


def test_azure_yaml_deploys_one_function_service_with_the_hook() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    services = re.search(r"^services:\n((?:[ \t]+.*\n?)+)", text, re.MULTILINE)
    assert services
    block = services.group(1)
    assert re.search(r"^  api:\s*$", block, re.MULTILINE)
    assert len(re.findall(r"^  \w[\w-]*:\s*$", block, re.MULTILINE)) == 1, "one service"
    assert re.search(r"^\s+project:\s*\.\s*$", block, re.MULTILINE)
    assert re.search(r"^\s+language:\s*python\s*$", block, re.MULTILINE)
    assert re.search(r"^\s+host:\s*function\s*$", block, re.MULTILINE)
    run = re.search(r"^  postprovision:\n(?:\s{4}.*\n)*?\s{4}run:\s*(\S+)", text, re.MULTILINE)
    assert run
    hook = ROOT / run.group(1)
    assert hook.exists() and os.access(hook, os.X_OK)
    assert (INFRA / "main.parameters.json").exists()
    assert "azd-service-name" in load(FUNCTION_APP).text and resolve(FUNCTION_APP, Expr("serviceName")) == "api"


def test_postprovision_hook_migrates_and_creates_the_app_role() -> None:
    hook = (INFRA / "hooks" / "postprovision.sh").read_text(encoding="utf-8")
    assert hook.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in hook
    assert "-m shared.migrate" in hook
    assert "pgaadauth_create_principal" in hook
    assert "GRANT SELECT, INSERT, UPDATE, DELETE" in hook
    assert "ALTER DEFAULT PRIVILEGES" in hook
    assert ":5432/" in hook, "migrations connect directly, never through PgBouncer"
    assert (ROOT / "shared" / "migrate.py").exists()


def test_checkov_gate_is_pinned_and_checks_parse_errors() -> None:
    script = ROOT / ".ci" / "checkov.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text(encoding="utf-8")
    assert re.search(r"checkov==\$\{CHECKOV_VERSION\}|checkov==\d", text)
    assert "--skip-download" in text and "--framework bicep" in text
    assert "parsing_errors" in text


def test_host_json_matches_the_platform_setup() -> None:
    host = host_json()
    assert host["version"] == "2.0"
    assert host.get("telemetryMode") == "OpenTelemetry"
    assert route_prefix() == "api"
    bundle = host.get("extensionBundle")
    if bundle is not None:  # HTTP needs no bundle; Flex requires 4.x when one is present
        assert bundle["version"].startswith("[4.")


def test_local_settings_example_matches_the_cloud_configuration() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    values = example["Values"]
    # Core Tools needs the worker runtime locally; on Flex it comes from functionAppConfig.
    assert values.get("FUNCTIONS_WORKER_RUNTIME") == "python"
    # Same CORS decision locally: credentials never.
    assert example.get("Host", {}).get("CORSCredentials", False) is False
    # The worker-configured telemetry switch is Azure-only (the app configures telemetry itself locally).
    assert values.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "") in {"", "false"}
    # The example lists every setting the app reads (API.md), except what only the platform sets.
    azure_only = {"WEBSITE_AUTH_ENABLED", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "AZURE_CLIENT_ID"}
    missing = setting_names() - set(values) - azure_only
    assert not missing, f"local.settings.json.example does not list: {sorted(missing)}"
