"""The MCP Registry API: one HTTP trigger per endpoint (Azure Functions, Python v2 programming model).

Triggers only parse the request, call one function in `shared/` and return its response. Routes are
written so that no request path can match two of them: the host matches routes in registration order
with no "literal beats parameter" rule, so ids are constrained (`{registration_id:guid}`).

Each endpoint is declared once, here: its route and methods (`app.route`), its auth level (the decorator
applied: `@public`, `@authenticated` or `@admin_only`) and its description (`@Operation`: summary, models,
errors). The OpenAPI document (`GET /api/openapi.json`, shared/openapi.py) is built from these alone.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.auth import admin_only, authenticated
from shared.errors import (
    DatabaseUnavailable,
    DuplicateEndpoint,
    DuplicateServerName,
    Forbidden,
    InvalidQuery,
    InvalidStateTransition,
    NotFound,
    PreconditionFailed,
)
from shared.http import (
    parse_json_body,
    parse_query,
    public,
    read_json_object,
    registrations_url,
    request_path_url,
    route_uuid,
)
from shared.lazy_imports import lazy_module
from shared.logs import configure_logging
from shared.operations import Link, Operation
from shared.schedule import probe_schedule
from shared.telemetry import configure_telemetry

if TYPE_CHECKING:
    from shared import (
        audit,
        mcp_registry,
        models,
        openapi,
        publishing,
        registrations,
        users,
        verification,
        verification_models,
    )
    from shared import health as health_report
    from shared.tokens import Caller
else:
    # What the triggers call, loaded by the first request that calls it: indexing builds no pydantic model
    # (shared/lazy_imports.py). `import function_app` went from 1.46-1.63x its dependencies to 0.78-0.91x
    # (bench/RESULTS.md, "Cold start against the dependencies").
    audit = lazy_module("shared.audit")
    health_report = lazy_module("shared.health")
    mcp_registry = lazy_module("shared.mcp_registry")
    models = lazy_module("shared.models")
    openapi = lazy_module("shared.openapi")
    publishing = lazy_module("shared.publishing")
    registrations = lazy_module("shared.registrations")
    users = lazy_module("shared.users")
    verification = lazy_module("shared.verification")
    verification_models = lazy_module("shared.verification_models")

# Once per worker process, before any request: JSON logs (under the Functions worker: its handler with our
# formatter, see shared/logs.py), then Azure Monitor only if a connection string is set (shared/telemetry.py).
configure_logging(os.environ.get("LOG_LEVEL"))
configure_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# ---------------------------------------------------------------- pieces several declarations share

_ID = {"registration_id": {"description": "The registration's id (a UUID; anything else is 404)"}}
_SERVER_NAME = {
    "serverName": {
        "description": "Reverse-DNS server name `namespace/name`, its `/` sent as `%2F`",
        "schema": {"type": "string", "minLength": 1},
    }
}
# The MCP Registry's reads: conditional (ETag / 304), its own error body, always from the database.
_REGISTRY_READ: dict[str, Any] = {
    "conditional": True,
    "errors": (InvalidQuery, NotFound),
    "error_model": "McpRegistryError",
    "uses_database": True,
    "tags": ("mcp-registry",),
}


def _registration_links(*names: str) -> dict[str, Link]:
    """Links from an answer carrying a registration to the operations on it (stateful clients follow them)."""
    targets = {
        "get": ("get_registration", "Read the registration"),
        "update": ("update_registration", "Edit the registration (with its ETag as If-Match)"),
        "status": ("change_registration_status", "Approve or reject the registration (with its ETag as If-Match)"),
        "delete": ("delete_registration", "Delete the registration"),
    }
    links = {}
    for name in names:
        operation, description = targets[name]
        parameters = {"registration_id": "$response.body#/registration_id"}
        if name in ("update", "status"):
            parameters["header.If-Match"] = "$response.header.ETag"
        links[operation] = Link(operation, parameters, description)
    return links


# ---------------------------------------------------------------- the endpoints


@app.route(route="health", methods=["GET"])
@public
@Operation(
    "Is the API up and its database answering?",
    response="HealthReport",
    description="Polled by monitors; answers within a short timeout even when the database hangs.",
    errors=(DatabaseUnavailable,),
    override={503: ("HealthReport", {"Retry-After": "retry"})},
    uses_database=False,
    tags=("health",),
)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return await health_report.health_response()


@app.route(route="users", methods=["POST"])
@authenticated
@Operation(
    "Create or refresh the caller's user record from the token",
    response="User",
    status=201,
    also={200: "The record existed"},
    description="201 when this request created the record, 200 when it existed.",
)
async def sign_in_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await users.sign_in_response(caller.user_id, created=caller.created)


@app.route(route="users/me", methods=["GET"])
@authenticated
@Operation("The caller's user record", response="User")
async def get_current_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await users.get_user_response(caller.user_id)


@app.route(route="users/{user_id:guid}", methods=["GET"])
@authenticated
@Operation(
    "Any user's record",
    response="User",
    errors=(NotFound,),
    path_parameters={"user_id": {"description": "The user's id (a UUID)"}},
)
async def get_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await users.get_user_response(route_uuid(req, "user_id"))


@app.route(route="registrations", methods=["POST"])
@authenticated
@Operation(
    "Register an MCP endpoint (starts Pending)",
    response="Registration",
    status=201,
    body="RegistrationCreate",
    errors=(DuplicateEndpoint, DuplicateServerName),
    etag=True,
    location=True,
    links=_registration_links("get", "update", "status", "delete"),
    description="Two concurrent submissions of one URL: exactly one 201, the other 409.",
)
async def create_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.create_registration(
        parse_json_body(req, models.RegistrationCreate), caller, base_url=request_path_url(req)
    )


@app.route(route="registrations", methods=["GET"])
@authenticated
@Operation("List registrations (newest first)", response="RegistrationList", query="RegistrationListQuery")
async def list_registrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.list_registrations(parse_query(req, models.RegistrationListQuery))


@app.route(route="registrations/my", methods=["GET"])
@authenticated
@Operation("The caller's own registrations (newest first)", response="RegistrationList", query="MyRegistrationsQuery")
async def list_my_registrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.list_my_registrations(parse_query(req, models.MyRegistrationsQuery), caller)


@app.route(route="registrations/by-url", methods=["GET"])
@authenticated
@Operation(
    "Look a registration up by its exact endpoint URL",
    response="Registration",
    query="ByUrlQuery",
    errors=(NotFound,),
    etag=True,
    description="The compliance check for CI pipelines.",
)
async def get_registration_by_url(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.get_registration_by_url(parse_query(req, models.ByUrlQuery))


@app.route(route="registrations/{registration_id:guid}", methods=["GET"])
@authenticated
@Operation(
    "One registration",
    response="Registration",
    errors=(NotFound,),
    etag=True,
    path_parameters=_ID,
    links=_registration_links("update", "status"),
)
async def get_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.get_registration(route_uuid(req, "registration_id"))


@app.route(route="registrations/{registration_id:guid}", methods=["PATCH"])
@authenticated
@Operation(
    "Edit a registration's metadata",
    response="Registration",
    body="RegistrationUpdate",
    errors=(NotFound, Forbidden, PreconditionFailed, DuplicateEndpoint, DuplicateServerName),
    etag=True,
    if_match=True,
    path_parameters=_ID,
    links=_registration_links("get", "status", "delete"),
    description="An admin, or the submitter while the registration is Pending; others get 403.",
)
async def update_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.update_registration(
        route_uuid(req, "registration_id"),
        parse_json_body(req, models.RegistrationUpdate),
        caller,
        if_match=req.headers.get("if-match"),
    )


@app.route(route="registrations/{registration_id:guid}/status", methods=["PATCH"])
@admin_only
@Operation(
    "Approve or reject a Pending registration",
    response="Registration",
    body="StatusChange",
    errors=(NotFound, InvalidStateTransition, PreconditionFailed),
    etag=True,
    if_match=True,
    path_parameters=_ID,
    links={
        **_registration_links("get", "delete"),
        "mcp_server_versions": Link(
            "mcp_registry_servers__get_v0_1_servers_by_serverName_versions",
            {"serverName": "$response.body#/server_name"},
            "An approved registration is served by the MCP Registry under its server name",
        ),
        "mcp_server_latest": Link(
            "mcp_registry_servers__get_v0_1_servers_by_serverName_versions_latest",
            {"serverName": "$response.body#/server_name"},
        ),
    },
    description=(
        "Only from Pending; concurrent decisions: exactly one wins, the rest get 409. With If-Match the decision "
        "applies only to that version (412 otherwise). Without it, an approval is refused (412) while someone "
        "else edited the registration within APPROVAL_REVIEW_WINDOW_S: reload, review, approve again."
    ),
)
async def change_registration_status(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.decide_registration(
        route_uuid(req, "registration_id"),
        parse_json_body(req, models.StatusChange),
        caller,
        if_match=req.headers.get("if-match"),
    )


@app.route(route="registrations/{registration_id:guid}/lifecycle", methods=["PATCH"])
@admin_only
@Operation(
    "Deprecate an approved registration, or make it active again",
    response="Registration",
    body="LifecycleChange",
    errors=(NotFound, InvalidStateTransition),
    etag=True,
    path_parameters=_ID,
    description=(
        "A deprecated server stays in the MCP Registry with status `deprecated` and the message (what to use "
        "instead); `{\"status\": \"active\"}` undoes it. Both are audited (Deprecated / Undeprecated)."
    ),
)
async def change_registration_lifecycle(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.change_lifecycle(
        route_uuid(req, "registration_id"), parse_json_body(req, models.LifecycleChange), caller
    )


@app.route(route="registrations/{registration_id:guid}/verification", methods=["POST"])
@admin_only
@Operation(
    "Probe the registration's endpoint over MCP now",
    response="Verification",
    errors=(NotFound,),
    path_parameters=_ID,
    tags=("verification",),
    description=(
        "Connects to the endpoint over its transport with the MCP SDK's client, lists every tool and records "
        "the outcome (see `Verification.status`); answers within PROBE_TIMEOUT_S. A verified probe of an "
        "Approved registration whose tools differ from the approved set records `drifted` and an audit entry."
    ),
)
async def verify_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await verification.verify_registration_response(route_uuid(req, "registration_id"), caller)


@app.route(route="registrations/{registration_id:guid}/verification/approve-tools", methods=["POST"])
@admin_only
@Operation(
    "Approve the tool set the last probe found",
    response="Verification",
    body="ToolSetApproval",
    errors=(NotFound, InvalidStateTransition, PreconditionFailed),
    path_parameters=_ID,
    tags=("verification",),
    description=(
        "For an Approved registration whose last probe listed its tools (typically `drifted`): send the "
        "`tools_fingerprint` you reviewed; it becomes `approved_tools_fingerprint`, a suspended server is served "
        "again, and an audit entry is written (`Updated`, metadata.event `ToolsApproved`). 412 if the tools "
        "changed since; 409 if the last probe listed no tools or the registration is not Approved."
    ),
)
async def approve_registration_tools(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await verification.approve_tools_response(
        route_uuid(req, "registration_id"), parse_json_body(req, verification_models.ToolSetApproval), caller
    )


# Re-probes Approved registrations (PROBE_SCHEDULE, NCRONTAB in UTC; read when the app is indexed, as the
# host reads a schedule). Not on startup: a scale-out or restart must not start an extra round of probes.
@app.timer_trigger(schedule=probe_schedule(), arg_name="timer", run_on_startup=False, use_monitor=True)
async def probe_approved_servers(timer: func.TimerRequest) -> None:
    await verification.run_scheduled_probes()


@app.route(route="registrations/{registration_id:guid}", methods=["DELETE"])
@admin_only
@Operation("Delete a registration (its audit trail stays)", status=204, errors=(NotFound,), path_parameters=_ID)
async def delete_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.delete_registration(route_uuid(req, "registration_id"), caller)


@app.route(route="audit-logs", methods=["GET"])
@admin_only
@Operation("The audit log (newest first)", response="AuditLogList", query="AuditLogQuery")
async def list_audit_logs(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await audit.list_audit_logs(parse_query(req, models.AuditLogQuery))


@app.route(route="v0.1/servers/{*rest}", methods=["GET", "OPTIONS"])
@public
@Operation(
    "MCP Registry: list the approved servers",
    response="McpServerList",
    path="v0.1/servers",
    method="GET",
    query="McpServersQuery",
    description="The MCP Registry v0.1 format, for GitHub Copilot and VS Code (CORS `*`).",
    **_REGISTRY_READ,
)
@Operation(
    "MCP Registry: a server's versions",
    response="McpServerList",
    path="v0.1/servers/{serverName}/versions",
    method="GET",
    query="McpServerLookupQuery",
    path_parameters=_SERVER_NAME,
    **_REGISTRY_READ,
)
@Operation(
    "MCP Registry: a server's latest version",
    response="McpServerResponse",
    path="v0.1/servers/{serverName}/versions/latest",
    method="GET",
    query="McpServerLookupQuery",
    path_parameters=_SERVER_NAME,
    **_REGISTRY_READ,
)
@Operation(
    "MCP Registry: one version of a server",
    response="McpServerResponse",
    path="v0.1/servers/{serverName}/versions/{version}",
    method="GET",
    query="McpServerLookupQuery",
    path_parameters={**_SERVER_NAME, "version": {"schema": {"type": "string", "minLength": 1}}},
    **_REGISTRY_READ,
)
@Operation(
    "MCP Registry: CORS preflight",
    status=204,
    path="v0.1/servers",
    method="OPTIONS",
    errors=(NotFound,),
    error_model="McpRegistryError",
    uses_database=False,
    tags=("mcp-registry",),
)
async def mcp_registry_servers(req: func.HttpRequest) -> func.HttpResponse:
    return await mcp_registry.registry_servers_response(req)


@app.route(route="v0.1/allowlist", methods=["GET"])
@admin_only
@Operation(
    "MCP Registry: approved URLs as Copilot's allowedMcpServers",
    response="McpAllowlist",
    query="AllowlistQuery",
    errors=(NotFound,),
    tags=("mcp-registry",),
)
async def mcp_registry_allowlist(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await mcp_registry.allowlist_response(parse_query(req, models.AllowlistQuery).include_deprecated)


@app.route(route="v0.1/validate", methods=["POST"])
@authenticated
@Operation(
    "MCP Registry: check a server.json without publishing it",
    response="ServerJsonCheck",
    body="ServerJsonDocument",
    tags=("mcp-registry",),
    description=(
        "Checks the file against the official schema (2025-12-11) and this registry's rules (namespace, one "
        "remote, no packages, the registration rules) and answers what publishing it would register, or 422 "
        "naming each wrong field in the file's terms. Writes nothing."
    ),
)
async def validate_server_json(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return publishing.validate_response(read_json_object(req), caller)


@app.route(route="v0.1/publish", methods=["POST"])
@authenticated
@Operation(
    "MCP Registry: publish a server.json as a Pending registration",
    response="Registration",
    status=201,
    also={200: "The caller's Pending registration of that name was updated"},
    body="ServerJsonDocument",
    errors=(DuplicateEndpoint, DuplicateServerName, InvalidStateTransition),
    etag=True,
    tags=("mcp-registry",),
    description=(
        "Same URL rules, duplicate checks and audit as POST /api/registrations; the registration is the caller's "
        "and Pending until an admin approves it. Publishing a name the caller owns while it is Pending updates "
        "it; while Approved (or Rejected) it is 409 with how to proceed."
    ),
)
async def publish_server_json(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await publishing.publish(read_json_object(req), caller, base_url=registrations_url(req))


@app.route(route="openapi.json", methods=["GET"])
@public
@Operation(
    "This OpenAPI 3.1 document",
    content={"application/json": {"type": "object"}},
    uses_database=False,
    tags=("api-description",),
)
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.document_response(app)


@app.route(route="docs", methods=["GET"])
@public
@Operation(
    "The API docs page (Swagger UI)",
    content={"text/html": {"type": "string"}},
    uses_database=False,
    tags=("api-description",),
)
async def docs_page(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.docs_page_response()


@app.route(route="docs/{asset}", methods=["GET"])
@public
@Operation(
    "A static asset of the docs page",
    content={
        "text/javascript": {"type": "string"},
        "text/css": {"type": "string"},
        "image/png": {"type": "string", "contentMediaType": "image/png"},
        "application/json": {},
    },
    errors=(NotFound,),
    uses_database=False,
    path_parameters={
        "asset": {"description": "File name of the asset", "schema": {"type": "string"}, "example": "swagger-ui.css"}
    },
    tags=("api-description",),
)
async def docs_asset(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.docs_asset_response(req.route_params.get("asset", ""))
