"""A local stand-in for the Functions host: serves the same `function_app.app` over real HTTP.

For machines without Azure Functions Core Tools (`func start` is the way where it exists). It holds no
endpoint logic and no second route table: it reads the functions, routes and methods from the app
object, and reproduces what the host and the Python worker do around them — `host.json` routePrefix,
route templates with constraints (the Python library does not enforce them), case-insensitive literal
segments, `local.settings.json` Values and Host CORS, query strings parsed into `params`, headers
lower-cased with repeats joined by a comma, and `func.HttpRequest` / `func.HttpResponse` conversion.
Where the API contract is stricter than the host, it follows the contract: bodies over 64 KiB are refused
while reading (the host itself takes 100 MB), and URLs are built from the configured base, not `Host`.

Run: `uv run python -m devtools.local_host`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

import azure.functions as func

from devtools.local_issuer import ISSUER_PATH, issuer_documents, load_or_create_key
from devtools.local_settings import ROOT, apply_local_values, load_local_settings
from devtools.local_setup import prepare_local_environment
from devtools.local_telemetry import end_request_span, request_span
from shared import db
from shared.app_index import http_routes
from shared.errors import ApiError, MethodNotAllowed, NotFound, PayloadTooLarge
from shared.http import MAX_BODY_BYTES
from shared.routes import RouteParameter, RouteTemplate, route_prefix

# With host CORS on, the anonymous MCP Registry routes (under the route prefix) answer every origin with `*`:
# Copilot clients read them from vscode-file://, github.com and other origins of their own. On Azure, platform
# CORS does the same with infra's allowedOrigins ['*'] (README, "CORS"); locally Host.CORS still governs every
# other route. Without host CORS the functions' own headers stand (the registry's are `*` too).
REGISTRY_ROUTES = "v0.1/"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ExtraRoute = Callable[[str], Awaitable[tuple[int, dict[str, str], bytes]]]

# The forms .NET's Guid.TryParse accepts: 32 digits (N), hyphenated (D), and D in braces (B) or parentheses (P).
_GUID_D = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(rf"[0-9a-fA-F]{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\)")
_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "guid": lambda value: bool(_GUID.fullmatch(value)),
    "int": lambda value: bool(re.fullmatch(r"-?\d+", value)),
    "long": lambda value: bool(re.fullmatch(r"-?\d+", value)),
    "alpha": lambda value: bool(re.fullmatch(r"[A-Za-z]+", value)),
    "bool": lambda value: value.lower() in {"true", "false"},
}


# ---------------------------------------------------------------- CORS


def parse_cors_origins(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())


# ---------------------------------------------------------------- route matching


def accepts(parameter: RouteParameter, value: str) -> bool:
    """Whether a route value passes the parameter's constraints (the host enforces them, the library not)."""
    for constraint in parameter.constraints:
        check = _CONSTRAINTS.get(constraint)
        if check is not None:
            if not check(value):
                return False
            continue
        match = re.fullmatch(r"(minlength|maxlength|length|min|max)\((\d+)(?:,(\d+))?\)", constraint)
        if match is None:
            regex = re.fullmatch(r"regex\((.*)\)", constraint)
            if regex is not None and not re.search(regex.group(1), value):
                return False
            continue
        kind, first, second = match.group(1), int(match.group(2)), match.group(3)
        size = len(value)
        if kind == "minlength" and size < first:
            return False
        if kind == "maxlength" and size > first:
            return False
        if kind == "length" and not (first <= size <= int(second) if second is not None else size == first):
            return False
        if kind in {"min", "max"}:
            if not re.fullmatch(r"-?\d+", value):
                return False
            if (kind == "min" and int(value) < first) or (kind == "max" and int(value) > first):
                return False
    return True


@dataclass
class RouteMatcher:
    """A parsed route template (shared.routes) as a request matcher: literal segments case-insensitive, a
    trailing slash accepted, optional and catch-all parameters may be left out."""

    template: str
    regex: re.Pattern[str]
    parameters: dict[str, RouteParameter]

    @classmethod
    def compile(cls, prefix: str, route: str) -> RouteMatcher:
        parsed = RouteTemplate.parse(prefix, route)
        pattern = ""
        for index, segment in enumerate(parsed.segments):
            separator = "/" if index else ""
            match segment:
                case (RouteParameter() as parameter,):
                    group = f"(?P<{parameter.name}>{'.*' if parameter.catch_all else '[^/]+'})"
                    if parameter.optional or parameter.catch_all:
                        pattern += f"(?:{separator}{group})?"
                    else:
                        pattern += separator + group
                case _:
                    pattern += separator + "".join(
                        re.escape(part) if isinstance(part, str) else f"(?P<{part.name}>[^/]+?)" for part in segment
                    )
        parameters = {parameter.name: parameter for parameter in parsed.parameters}
        return cls(parsed.template, re.compile(f"^{pattern}/?$", re.IGNORECASE), parameters)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (already stripped of the leading slash), or None."""
        found = self.regex.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for name, parameter in self.parameters.items():
            raw = found.group(name)
            if raw is None:
                if parameter.optional or parameter.catch_all:
                    continue
                return None
            value = _decode_path_value(raw)
            if not accepts(parameter, value):
                return None
            values[name] = value
        return values


def _decode_path_value(raw: str) -> str:
    # Like Kestrel: percent-decode the path except an encoded slash, which stays %2F.
    return "%2F".join(unquote(part) for part in re.split("%2[fF]", raw))


# ---------------------------------------------------------------- the function table


@dataclass
class LocalFunction:
    name: str
    methods: frozenset[str] | None  # None: every method
    template: RouteMatcher
    handler: Callable[..., Awaitable[func.HttpResponse]]
    trigger_arg: str
    wants_context: bool


def discover_functions(app: func.FunctionApp, route_prefix: str) -> list[LocalFunction]:
    """The app's HTTP functions, in the app's registration order (as the host receives them)."""
    return [
        LocalFunction(
            name=route.name,
            methods=route.methods,
            template=RouteMatcher.compile(route_prefix, route.route),
            handler=route.handler,
            trigger_arg=route.trigger_arg,
            wants_context="context" in inspect.signature(route.handler).parameters,
        )
        for route in http_routes(app)
    ]


# ---------------------------------------------------------------- request conversion


def parse_query_string(query: str) -> dict[str, str]:
    """Query string → params as the host hands them to the worker: decoded, repeats joined by ','."""
    collected: dict[str, list[str]] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        collected.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return {name: ",".join(values) for name, values in collected.items()}


def collect_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


@dataclass
class _TraceContext:
    trace_parent: str
    trace_state: str
    attributes: dict[str, str] = field(default_factory=dict)


class LocalContext(func.Context):
    """The invocation context the worker passes to functions that ask for `context`."""

    def __init__(self, function_name: str, traceparent: str, tracestate: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._trace_context = _TraceContext(traceparent, tracestate)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(ROOT)

    @property
    def trace_context(self) -> Any:
        return self._trace_context

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


async def read_body(receive: Receive, content_length: str | None, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None as soon as it is known to be over `limit` (API.md: 413 over 64 KiB).

    A declared length over the limit is refused before any of the body is read; a chunked body is refused at
    the chunk that crosses it. Chunks are joined once at the end (appending to bytes copied the whole body
    for every chunk).
    """
    if content_length is not None and content_length.strip().isdigit() and int(content_length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def listening_base_url(scope: Scope) -> str:
    """scheme://host:port of the socket the request came in on (the ASGI server's address)."""
    host, port = scope.get("server") or ("127.0.0.1", 7071)
    return f"{scope.get('scheme', 'http')}://{url_host(str(host))}:{port}"


def url_host(host: str) -> str:
    """A listening address as a URL host: a wildcard address becomes loopback, IPv6 gets brackets."""
    if host in {"", "0.0.0.0"}:
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


# ---------------------------------------------------------------- the ASGI application


class LocalFunctionsHost:
    def __init__(
        self,
        app: func.FunctionApp,
        *,
        route_prefix: str = "api",
        cors_origins: Iterable[str] = (),
        cors_credentials: bool = False,
        extra_routes: Mapping[str, ExtraRoute] | None = None,
        base_url: str | None = None,
    ) -> None:
        self.functions = discover_functions(app, route_prefix)
        self.registry_path = "/" + "/".join(part for part in (route_prefix.strip("/"), REGISTRY_ROUTES) if part)
        self.cors_origins = tuple(cors_origins)
        self.cors_credentials = cors_credentials
        # Non-function paths served beside the app (the local OpenID issuer), keyed by path prefix.
        self.extra_routes = dict(extra_routes or {})
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []
        # The scheme://host:port of the URLs functions see (Location headers are built from it): the configured
        # base, else the address the server listens on; never the request's Host header, which the caller
        # chooses (on Azure the front end's host name is the site's own).
        self.base_url = base_url.rstrip("/") if base_url else None

    # -- CORS (Host.CORS), applied by the host before and after the function, as on Azure

    def _allowed_origin(self, origin: str) -> str | None:
        if not self.cors_origins or not origin:
            return None
        if "*" in self.cors_origins:
            return origin if self.cors_credentials else "*"
        return origin if origin.rstrip("/") in self.cors_origins else None

    def is_registry_path(self, path: str) -> bool:
        return path.lower().startswith(self.registry_path)

    def _cors_headers(self, origin: str, path: str) -> dict[str, str]:
        if origin and self.cors_origins and self.is_registry_path(path):
            return {"Access-Control-Allow-Origin": "*"}
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return {}
        headers = {"Access-Control-Allow-Origin": allowed, "Vary": "Origin"}
        if self.cors_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def _preflight(self, headers: Mapping[str, str], path: str) -> tuple[int, dict[str, str], bytes]:
        origin = headers.get("origin", "")
        response_headers = self._cors_headers(origin, path)
        if response_headers:
            requested_method = headers.get("access-control-request-method", "")
            response_headers["Access-Control-Allow-Methods"] = requested_method
            requested = headers.get("access-control-request-headers")
            if requested:
                response_headers["Access-Control-Allow-Headers"] = requested
        return 204, response_headers, b""

    # -- dispatch

    def match(self, path: str, method: str) -> tuple[LocalFunction | None, dict[str, str], set[str]]:
        """First function (in registration order) whose route and method match, like the host."""
        relative = path.lstrip("/")
        allowed: set[str] = set()
        for function in self.functions:
            values = function.template.match(relative)
            if values is None:
                continue
            if function.methods is None or method in function.methods:
                return function, values, allowed
            allowed |= function.methods
        return None, {}, allowed

    async def handle(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes, base_url: str
    ) -> tuple[int, dict[str, str], bytes]:
        for prefix, extra in self.extra_routes.items():
            if raw_path.startswith(prefix):
                return await extra(raw_path)
        origin = headers.get("origin", "")
        preflight = method == "OPTIONS" and origin and "access-control-request-method" in headers
        if self.cors_origins and preflight:
            return self._preflight(headers, raw_path)
        function, route_params, allowed = self.match(raw_path, method)
        if function is None:
            error = MethodNotAllowed() if allowed else NotFound("No function matches this path")
            allow = {"Allow": ", ".join(sorted(allowed))} if allowed else {}
            return self.error_parts(error, origin, raw_path, allow)
        url = base_url + raw_path + (f"?{query}" if query else "")
        request = func.HttpRequest(
            method=method,
            url=url,
            headers=headers,
            params=parse_query_string(query),
            route_params=route_params,
            body=body,
        )
        traceparent, tracestate = headers.get("traceparent", ""), headers.get("tracestate", "")
        context = LocalContext(function.name, traceparent, tracestate)
        kwargs: dict[str, Any] = {function.trigger_arg: request}
        if function.wants_context:
            kwargs["context"] = context
        with request_span(
            f"{method} {function.name}",
            traceparent=traceparent,
            tracestate=tracestate,
            attributes={"http.request.method": method, "url.path": raw_path, "faas.invocation_id": context.invocation_id},
        ) as span:
            response = await function.handler(**kwargs)
            end_request_span(span, int(response.status_code))
        return self._response_parts(response, origin, raw_path)

    def error_parts(
        self, error: ApiError, origin: str, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """An error the host itself answers, in the contract's shape, with the host's CORS headers."""
        response_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        response_headers.update(self._cors_headers(origin, path))
        return error.status, response_headers, json.dumps(error.body()).encode()

    def _response_parts(
        self, response: func.HttpResponse, origin: str, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        response_headers = dict(response.headers.items())
        if not any(name.lower() == "content-type" for name in response_headers) and response.mimetype:
            charset = f"; charset={response.charset}" if response.charset else ""
            response_headers["Content-Type"] = f"{response.mimetype}{charset}"
        cors = self._cors_headers(origin, path)
        if cors:
            # Host CORS overrides the origin/method/header grants the function set, as platform CORS does on
            # Azure; which response headers a page may read (Expose-Headers) stays the function's to say.
            response_headers = {
                name: value
                for name, value in response_headers.items()
                if not name.lower().startswith("access-control-")
                or name.lower() == "access-control-expose-headers"
            }
            response_headers.update(cors)
        return int(response.status_code), response_headers, response.get_body() or b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = collect_headers(scope["headers"])
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        body = await read_body(receive, headers.get("content-length"))
        if body is None:
            status, response_headers, payload = self.error_parts(PayloadTooLarge(), headers.get("origin", ""), raw_path)
        else:
            status, response_headers, payload = await self.handle(
                scope["method"].upper(),
                raw_path,
                scope.get("query_string", b"").decode("latin-1"),
                headers,
                body,
                self.base_url or listening_base_url(scope),
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (name.encode("latin-1"), value.encode("latin-1")) for name, value in response_headers.items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for callback in self.on_shutdown:
                    await callback()
                await send({"type": "lifespan.shutdown.complete"})
                return


# ---------------------------------------------------------------- the local run


DEFAULT_APP = "function_app:app"


def load_app(reference: str = DEFAULT_APP) -> func.FunctionApp:
    """The FunctionApp named by "module:attribute" (the project's app unless told otherwise)."""
    module_name, _, attribute = reference.partition(":")
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if not isinstance(app, func.FunctionApp):
        raise TypeError(f"{reference} is not a func.FunctionApp")
    return app


def build_host(
    cors: str | None = None, app_reference: str = DEFAULT_APP, base_url: str | None = None
) -> LocalFunctionsHost:
    """Apply local settings to the environment, import the app and wrap it (settings are read lazily)."""
    local_settings = load_local_settings()
    apply_local_values(local_settings.get("Values", {}))
    host_section = local_settings.get("Host", {})
    cors_value = cors if cors is not None else os.environ.get("LOCAL_HOST_CORS", host_section.get("CORS"))
    credentials = str(host_section.get("CORSCredentials", "false")).lower() == "true"

    host = LocalFunctionsHost(
        load_app(app_reference),
        route_prefix=route_prefix(),
        cors_origins=parse_cors_origins(cors_value),
        cors_credentials=credentials,
        base_url=base_url,
    )
    host.on_shutdown.append(db.close_pool)
    if os.environ.get("LOCAL_ISSUER_ENABLED") == "true":
        serve_local_issuer(host)
    return host


def serve_local_issuer(host: LocalFunctionsHost) -> None:
    config_url = os.environ["ENTRA_OPENID_CONFIG_URL"]
    base_url = config_url.split(ISSUER_PATH, 1)[0]
    documents = issuer_documents(base_url, os.environ["ENTRA_TENANT_ID"], load_or_create_key())

    async def serve(path: str) -> tuple[int, dict[str, str], bytes]:
        body = documents.get(path)
        if body is None:
            return 404, {}, b""
        return 200, {"Content-Type": "application/json"}, body

    host.extra_routes[ISSUER_PATH] = serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.local_host", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_HOST_PORT", "7071")))
    parser.add_argument("--cors", default=None, help="comma-separated allowed origins (default: Host.CORS)")
    parser.add_argument(
        "--app", default=DEFAULT_APP, help=f"the FunctionApp to serve, module:attribute (default: {DEFAULT_APP})"
    )
    args = parser.parse_args(argv)

    prepare_local_environment(port=args.port)
    base_url = os.environ.get("LOCAL_HOST_BASE_URL") or f"http://{url_host(args.host)}:{args.port}"
    host = build_host(args.cors, args.app, base_url)

    import uvicorn

    # log_config=None: uvicorn adds no handler of its own, so its warnings ("Invalid HTTP request received.")
    # reach the root logger's JSON handler like every other line of the local run.
    uvicorn.run(
        host, host=args.host, port=args.port, log_config=None, log_level="warning", access_log=False, lifespan="on"
    )


if __name__ == "__main__":
    main()
