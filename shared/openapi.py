"""The API's OpenAPI 3.1 document, built from the app itself, and the docs page that renders it.

Nothing here describes an endpoint. Every fact comes from the function app's registered functions
(`shared.app_index`, the same index the local host serves from): route, methods and path parameters from
the trigger, the auth level from the auth decorator applied, and summary, models and errors from the
function's `@Operation` declarations (`shared.operations`). Schemas are the models' own JSON Schema
(pydantic emits 2020-12, which OpenAPI 3.1 uses), and the errors are the `shared.errors` classes with
their status and code.

A function without a declaration or an auth decorator still appears (so the document never breaks in
production), as an operation marked `x-undocumented`; `undocumented_functions()` lists them and the
agreement test fails on any. `GET /api/docs` serves Swagger UI from the swagger-ui-bundle-v2 package (no
CDN at run time).
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import azure.functions as func
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, SkipJsonSchema, models_json_schema

from shared.app_index import HttpRoute, http_routes
from shared.errors import (
    ApiError,
    DatabaseUnavailable,
    Forbidden,
    InternalError,
    InvalidJson,
    InvalidQuery,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.models import NO_NUL
from shared.operations import Auth, Operation, auth_of, model_named, operations_of
from shared.routes import RouteTemplate, route_prefix

OPENAPI_VERSION = "3.1.0"
API_TITLE = "MCP Registry API"
API_VERSION = "0.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
BEARER = "bearerAuth"

# ---------------------------------------------------------------- models of bodies that have no model elsewhere


class Error(BaseModel):
    """Every error the API returns (the contract's one error shape)."""

    detail: str = Field(description="Human-readable message; never a stack trace, SQL or a secret")
    error_code: str = Field(description="Stable machine-readable code (see each response for the possible ones)")
    field_errors: dict[str, str] | SkipJsonSchema[None] = Field(
        default=None, description="Validation errors only: field name → message"
    )
    registration_id: UUID | None = Field(
        default=None, description="DUPLICATE_ENDPOINT only: the registration that holds the endpoint URL"
    )
    invocation_id: str | SkipJsonSchema[None] = Field(
        default=None, description="INTERNAL_ERROR only: the invocation id the failure was logged with"
    )


# ---------------------------------------------------------------- route templates


_CONSTRAINT_SCHEMAS: dict[str, dict[str, Any]] = {
    "guid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "alpha": {"type": "string", "pattern": "^[A-Za-z]+$"},
}


@dataclass(frozen=True)
class PathParameter:
    name: str
    schema: dict[str, Any]
    catch_all: bool


def openapi_path(prefix: str, route: str) -> tuple[str, list[PathParameter]]:
    """`registrations/{registration_id:guid}` → (`/api/registrations/{registration_id}`, its parameters)."""
    template = RouteTemplate.parse(prefix, route)
    parameters = []
    for parameter in template.parameters:
        schema: dict[str, Any] = {"type": "string"}
        for constraint in parameter.constraints:
            schema = dict(_CONSTRAINT_SCHEMAS.get(constraint.split("(")[0].lower(), schema))
        parameters.append(PathParameter(parameter.name, schema, parameter.catch_all))
    return template.path, parameters


# ---------------------------------------------------------------- schemas


def _accepts_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or (isinstance(schema.get("type"), list) and "null" in schema["type"]):
        return True
    return any(_accepts_null(branch) for branch in schema.get("anyOf", []) + schema.get("oneOf", []))


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's generated titles, and a `default: null` that the schema itself does not accept
    (a field typed `X | SkipJsonSchema[None]`: absent means null, null is never sent)."""
    if isinstance(schema, dict):
        cleaned = {key: _strip_titles(value) for key, value in schema.items() if key != "title" or isinstance(value, dict)}
        if "default" in cleaned and cleaned["default"] is None and "$ref" not in cleaned and not _accepts_null(cleaned):
            del cleaned["default"]
        return cleaned
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter's schema: absence is its null, so `null` is not a value to send."""
    schema = {key: value for key, value in schema.items() if not (key == "default" and value is None)}
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        rest = [branch for branch in branches if branch != {"type": "null"}]
        if len(rest) != len(branches):
            others = {key: value for key, value in schema.items() if key != "anyOf"}
            schema = {**others, **rest[0]} if len(rest) == 1 else {**others, "anyOf": rest}
    return schema


def _model(model: type[BaseModel] | str) -> type[BaseModel]:
    """A model, or the class a declaration names (`@Operation` names its models: shared.operations)."""
    return model_named(model) if isinstance(model, str) else model


class _Schemas:
    """Collects every model the document uses and renders them once, with shared components."""

    def __init__(self) -> None:
        self._wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
        self.refs: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]] = {}
        self.components: dict[str, Any] = {}

    def want(self, named: type[BaseModel] | str, mode: JsonSchemaMode) -> None:
        model = _model(named)
        if (model, mode) not in self._wanted:
            self._wanted.append((model, mode))

    def render(self) -> None:
        refs, definitions = models_json_schema(self._wanted, ref_template=REF_TEMPLATE)
        self.refs = {(model, mode): dict(value) for (model, mode), value in refs.items() if issubclass(model, BaseModel)}
        self.components = {name: _strip_titles(schema) for name, schema in definitions.get("$defs", {}).items()}

    def ref(self, named: type[BaseModel] | str, mode: JsonSchemaMode) -> dict[str, Any]:
        return self.refs[(_model(named), mode)]

    def query_parameters(self, named: type[BaseModel] | str) -> list[dict[str, Any]]:
        model = _model(named)
        schema = model.model_json_schema(mode="validation", ref_template=REF_TEMPLATE)
        for name, definition in schema.get("$defs", {}).items():
            existing = self.components.setdefault(name, _strip_titles(definition))
            if existing != _strip_titles(definition):
                raise ValueError(f"query model {model.__name__} defines a different {name} schema")
        required = set(schema.get("required", []))
        parameters = []
        for name, property_schema in schema.get("properties", {}).items():
            cleaned = _without_null(_strip_titles(property_schema))
            if cleaned.get("type") == "string" and not ({"pattern", "format", "enum", "const"} & set(cleaned)):
                cleaned["pattern"] = NO_NUL  # shared.http.parse_query refuses NUL in any parameter
            description = cleaned.pop("description", None)
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": cleaned}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
        return parameters


# ---------------------------------------------------------------- errors


def _error_classes(
    operation: Operation, auth: Auth, path_parameters: Sequence[PathParameter]
) -> list[type[ApiError]]:
    classes: list[type[ApiError]] = []
    if auth != "public":
        classes.append(Unauthenticated)
    if auth == "admin":
        classes.append(Forbidden)
    if operation.body is not None:
        classes += [InvalidJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed]
    if operation.query is not None:
        classes.append(InvalidQuery)
    if any(parameter.schema.get("format") == "uuid" for parameter in path_parameters):
        classes.append(NotFound)  # the host refuses a non-GUID; route_uuid refuses what slips through
    classes += list(operation.errors)
    uses_database = operation.uses_database if operation.uses_database is not None else auth != "public"
    if auth != "public" or uses_database:
        classes.append(DatabaseUnavailable)
    classes.append(InternalError)
    unique: list[type[ApiError]] = []
    for cls in classes:
        if cls not in unique:
            unique.append(cls)
    return unique


_RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "etag": {
        "description": "The registration's version; send it back as If-Match to edit safely",
        "required": True,
        "schema": {"type": "string"},
    },
    "location": {"description": "URL of the created registration", "required": True, "schema": {"type": "string"}},
    "auth": {
        "description": 'Always `Bearer error="invalid_token"`',
        "required": True,
        "schema": {"type": "string"},
    },
    "retry": {"description": "Seconds to wait before retrying", "required": True, "schema": {"type": "integer", "minimum": 0}},
    "registry_etag": {
        "description": "Strong for one server version, weak (from the data's change generation) for lists; "
        "send it back as If-None-Match",
        "required": True,
        "schema": {"type": "string"},
    },
    "cache": {"description": "`public, max-age=60, stale-while-revalidate=300`", "required": True, "schema": {"type": "string"}},
}


def _error_responses(
    operation: Operation, classes: Iterable[type[ApiError]], schemas: _Schemas
) -> dict[str, dict[str, Any]]:
    by_status: dict[int, list[type[ApiError]]] = {}
    for cls in classes:
        by_status.setdefault(cls.status, []).append(cls)
    responses: dict[str, dict[str, Any]] = {}
    for status in sorted(by_status):
        errors = by_status[status]
        codes = sorted({cls.error_code for cls in errors})
        description = "; ".join(f"{cls.error_code}: {cls.default_detail}" for cls in errors)
        # An unexpected failure is always the API's own error body (the endpoint wrapper renders it).
        error_model = Error if status == InternalError.status else operation.error_model or Error
        if status in operation.override:
            model, header_keys = operation.override[status]
            body_schema = schemas.ref(model, "serialization")
            headers = {name: _RESPONSE_HEADERS[key] for name, key in header_keys.items()}
        else:
            body_schema = {
                "allOf": [
                    schemas.ref(error_model, "serialization"),
                    {"properties": {"error_code": {"enum": codes}}},
                ]
            }
            headers = {}
            if status == Unauthenticated.status:
                headers["WWW-Authenticate"] = _RESPONSE_HEADERS["auth"]
            if status == DatabaseUnavailable.status:
                headers["Retry-After"] = _RESPONSE_HEADERS["retry"]
        response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": body_schema}}}
        if headers:
            response["headers"] = headers
        responses[str(status)] = response
    return responses


# ---------------------------------------------------------------- operations


def _success_responses(operation: Operation, schemas: _Schemas) -> dict[str, dict[str, Any]]:
    headers: dict[str, Any] = {}
    if operation.etag:
        headers["ETag"] = _RESPONSE_HEADERS["etag"]
    if operation.conditional:
        headers["ETag"] = _RESPONSE_HEADERS["registry_etag"]
        headers["Cache-Control"] = _RESPONSE_HEADERS["cache"]
    if operation.location:
        headers["Location"] = _RESPONSE_HEADERS["location"]
    content: dict[str, Any] | None = None
    if operation.response is not None:
        content = {JSON: {"schema": schemas.ref(operation.response, "serialization")}}
    elif operation.content is not None:
        content = {media_type: {"schema": dict(schema)} for media_type, schema in operation.content.items()}
    responses: dict[str, dict[str, Any]] = {}
    for status, description in {operation.status: operation.summary, **operation.also}.items():
        response: dict[str, Any] = {"description": description}
        if content is not None:
            response["content"] = content
        if headers:
            response["headers"] = headers
        if operation.links and status == operation.status:
            response["links"] = {
                name: {
                    "operationId": link.operation,
                    "parameters": dict(link.parameters),
                    **({"description": link.description} if link.description else {}),
                }
                for name, link in operation.links.items()
            }
        responses[str(status)] = response
    if operation.conditional:
        responses["304"] = {"description": "Not modified: If-None-Match holds the current ETag (no body)", "headers": headers}
    return responses


def _first_segment(path: str) -> str:
    segments = [segment for segment in path.split("/") if segment and "{" not in segment]
    return segments[1] if len(segments) > 1 else (segments[0] if segments else "api")


def _operation_object(
    function: str,
    operation: Operation,
    auth: Auth,
    operation_id: str,
    operation_path: str,
    path_parameters: Sequence[PathParameter],
    schemas: _Schemas,
) -> dict[str, Any]:
    result: dict[str, Any] = {"operationId": operation_id, "summary": operation.summary}
    if operation.description:
        result["description"] = operation.description
    result["tags"] = list(operation.tags) or [_first_segment(operation_path)]
    result["x-function"] = function
    result["x-auth"] = auth
    parameters: list[dict[str, Any]] = []
    for parameter in path_parameters:
        extra = dict(operation.path_parameters.get(parameter.name, {}))
        schema = extra.pop("schema", parameter.schema)
        parameters.append({"name": parameter.name, "in": "path", "required": True, "schema": schema, **extra})
    if operation.query is not None:
        parameters += schemas.query_parameters(operation.query)
    if operation.conditional:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An ETag from an earlier answer; 304 without a body while it is still current",
                "schema": {"type": "string"},
            }
        )
    if operation.if_match:
        parameters.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": "The ETag this change is based on; 412 when the registration changed since",
                "schema": {"type": "string"},
            }
        )
    if parameters:
        result["parameters"] = parameters
    if operation.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": schemas.ref(operation.body, "validation")}},
        }
    responses = _success_responses(operation, schemas)
    responses.update(_error_responses(operation, _error_classes(operation, auth, path_parameters), schemas))
    result["responses"] = responses
    if auth == "public":
        result["security"] = []
    else:
        result["security"] = [{BEARER: []}]
        if auth == "admin":
            result["description"] = (result.get("description", "") + " Admin only (the admin app role).").strip()
    return result


def _undocumented_operation(function: str, method: str, path_parameters: Sequence[PathParameter]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{function}__{method.lower()}",
        "summary": f"{function} (no @Operation or no auth decorator at its trigger)",
        "x-function": function,
        "x-undocumented": True,
        "responses": {"default": {"description": "Undescribed"}},
    }
    if path_parameters:
        operation["parameters"] = [
            {"name": parameter.name, "in": "path", "required": True, "schema": parameter.schema}
            for parameter in path_parameters
        ]
    return operation


def _all_models(app_routes: Sequence[HttpRoute]) -> _Schemas:
    schemas = _Schemas()
    for route in app_routes:
        for operation in operations_of(route.handler):
            if operation.body is not None:
                schemas.want(operation.body, "validation")
            if operation.response is not None:
                schemas.want(operation.response, "serialization")
            for model, _ in operation.override.values():
                schemas.want(model, "serialization")
            schemas.want(operation.error_model or Error, "serialization")
    schemas.want(Error, "serialization")
    schemas.render()
    return schemas


def build_document(app: func.FunctionApp, *, prefix: str | None = None) -> dict[str, Any]:
    prefix = route_prefix() if prefix is None else prefix
    routes = http_routes(app)
    schemas = _all_models(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operations = operations_of(route.handler)
        auth = auth_of(route.handler)
        route_path, route_parameters = openapi_path(prefix, route.route)
        if not operations or auth is None:
            for method in sorted(route.methods or {"GET"}):
                paths.setdefault(route_path, {})[method.lower()] = _undocumented_operation(route.name, method, route_parameters)
            continue
        for operation in operations:
            if operation.path is not None:
                path, parameters = openapi_path(prefix, operation.path)
            else:
                path, parameters = route_path, route_parameters
            methods = [operation.method] if operation.method else sorted(route.methods or {"GET"})
            for method in methods:
                if len(operations) == 1 and len(methods) == 1:
                    operation_id = route.name
                else:
                    operation_id = _operation_id(route.name, method, path, prefix)
                paths.setdefault(path, {})[method.lower()] = _operation_object(
                    route.name, operation, auth, operation_id, path, parameters, schemas
                )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": (
                "The organisation's catalogue of MCP server endpoints. Sign in with Microsoft Entra ID and send "
                "the access token as `Authorization: Bearer <token>`. Every error has one shape (`Error`)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Microsoft Entra ID access token for this API (v1.0 or v2.0)",
                }
            },
        },
    }


def _operation_id(function: str, method: str, path: str, prefix: str) -> str:
    relative = path.removeprefix("/" + prefix).strip("/")
    words = re.sub(r"[^A-Za-z0-9]+", "_", relative.replace("{", "by_").replace("}", "")).strip("_")
    return f"{function}__{method.lower()}_{words}"


def undocumented_functions(app: func.FunctionApp) -> list[str]:
    """HTTP functions lacking an `@Operation` or an auth decorator."""
    return [
        route.name for route in http_routes(app) if not operations_of(route.handler) or auth_of(route.handler) is None
    ]


# ---------------------------------------------------------------- the endpoints' responses

_lock = threading.Lock()
_documents: weakref.WeakKeyDictionary[func.FunctionApp, bytes] = weakref.WeakKeyDictionary()


def document_bytes(app: func.FunctionApp) -> bytes:
    """The document as served, built once per app object."""
    with _lock:
        cached = _documents.get(app)
        if cached is None:
            cached = json.dumps(build_document(app), separators=(",", ":")).encode("utf-8")
            _documents[app] = cached
        return cached


def document_response(app: func.FunctionApp) -> func.HttpResponse:
    return func.HttpResponse(
        body=document_bytes(app),
        status_code=200,
        mimetype=JSON,
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# ---------------------------------------------------------------- the docs page (Swagger UI, served locally)

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".map": JSON}
INITIALIZER = "initializer.js"

_assets: dict[str, Path] | None = None


def swagger_ui_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    return Path(str(swagger_ui_path))


def docs_assets() -> dict[str, Path]:
    """File name → file, from the package's directory listing (a request never builds a path)."""
    global _assets
    if _assets is None:
        directory = swagger_ui_dir()
        _assets = {
            entry.name: entry
            for entry in directory.iterdir()
            if entry.is_file() and entry.suffix in _ASSET_TYPES and _ASSET_NAME.fullmatch(entry.name)
        }
    return _assets


def _docs_base(prefix: str) -> str:
    return f"/{prefix}/docs" if prefix else "/docs"


def docs_page_html(prefix: str | None = None) -> str:
    prefix = route_prefix() if prefix is None else prefix
    base = _docs_base(prefix)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{API_TITLE}</title>
  <link rel="stylesheet" href="{base}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{base}/swagger-ui-bundle.js"></script>
  <script src="{base}/{INITIALIZER}"></script>
</body>
</html>
"""


def initializer_js(prefix: str | None = None) -> str:
    prefix = route_prefix() if prefix is None else prefix
    document_url = f"/{prefix}/openapi.json" if prefix else "/openapi.json"
    return (
        "window.ui = SwaggerUIBundle({\n"
        f"  url: {json.dumps(document_url)},\n"
        '  dom_id: "#swagger-ui",\n'
        "  deepLinking: true,\n"
        "  validatorUrl: null,\n"
        "  persistAuthorization: false,\n"
        "  presets: [SwaggerUIBundle.presets.apis],\n"
        '  layout: "BaseLayout"\n'
        "});\n"
    )


_DOCS_HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"}


def docs_page_response() -> func.HttpResponse:
    return func.HttpResponse(
        body=docs_page_html(),
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        headers={**_DOCS_HEADERS, "Cache-Control": "no-cache"},
    )


def docs_asset_response(name: str) -> func.HttpResponse:
    if name == INITIALIZER:
        body = initializer_js().encode("utf-8")
        media_type = "text/javascript"
    else:
        asset = docs_assets().get(name)
        if asset is None:
            raise NotFound("No such docs asset")
        body = asset.read_bytes()
        media_type = _ASSET_TYPES.get(asset.suffix) or mimetypes.guess_type(asset.name)[0] or "application/octet-stream"
    charset = None if media_type.startswith("image/") else "utf-8"
    return func.HttpResponse(
        body=body,
        status_code=200,
        mimetype=media_type,
        charset=charset,
        headers={**_DOCS_HEADERS, "Cache-Control": "public, max-age=3600"},
    )
