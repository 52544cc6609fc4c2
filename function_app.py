"""The MCP Registry API: one HTTP trigger per endpoint (Azure Functions, Python v2 programming model).

Triggers only parse the request, call one function in `shared/` and return its response. Routes are
written so that no request path can match two of them: the host matches routes in registration order
with no "literal beats parameter" rule, so ids are constrained (`{registration_id:guid}`).
"""

import os

import azure.functions as func

from shared import audit, openapi, publishing, registrations, verification
from shared.auth import Caller, admin_only, authenticated
from shared.health import health_response
from shared.http import (
    parse_json_body,
    parse_query,
    public,
    read_json_object,
    registrations_url,
    request_path_url,
    route_uuid,
)
from shared.logs import configure_logging
from shared.mcp_registry import allowlist_response, registry_servers_response
from shared.models import (
    AllowlistQuery,
    AuditLogQuery,
    ByUrlQuery,
    LifecycleChange,
    MyRegistrationsQuery,
    RegistrationCreate,
    RegistrationListQuery,
    RegistrationUpdate,
    StatusChange,
)
from shared.settings import probe_schedule
from shared.telemetry import configure_telemetry
from shared.users import get_user_response, sign_in_response
from shared.verification_models import ToolSetApproval

# Once per worker process, before any request: JSON logs (under the Functions worker: its handler with our
# formatter, see shared/logs.py), then Azure Monitor only if a connection string is set (shared/telemetry.py).
configure_logging(os.environ.get("LOG_LEVEL"))
configure_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
@public
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return await health_response()


@app.route(route="users", methods=["POST"])
@authenticated
async def sign_in_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await sign_in_response(caller.user_id, created=caller.created)


@app.route(route="users/me", methods=["GET"])
@authenticated
async def get_current_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await get_user_response(caller.user_id)


@app.route(route="users/{user_id:guid}", methods=["GET"])
@authenticated
async def get_user(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await get_user_response(route_uuid(req, "user_id"))


@app.route(route="registrations", methods=["POST"])
@authenticated
async def create_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.create_registration(
        parse_json_body(req, RegistrationCreate), caller, base_url=request_path_url(req)
    )


@app.route(route="registrations", methods=["GET"])
@authenticated
async def list_registrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.list_registrations(parse_query(req, RegistrationListQuery))


@app.route(route="registrations/my", methods=["GET"])
@authenticated
async def list_my_registrations(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.list_my_registrations(parse_query(req, MyRegistrationsQuery), caller)


@app.route(route="registrations/by-url", methods=["GET"])
@authenticated
async def get_registration_by_url(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.get_registration_by_url(parse_query(req, ByUrlQuery))


@app.route(route="registrations/{registration_id:guid}", methods=["GET"])
@authenticated
async def get_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.get_registration(route_uuid(req, "registration_id"))


@app.route(route="registrations/{registration_id:guid}", methods=["PATCH"])
@authenticated
async def update_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.update_registration(
        route_uuid(req, "registration_id"),
        parse_json_body(req, RegistrationUpdate),
        caller,
        if_match=req.headers.get("if-match"),
    )


@app.route(route="registrations/{registration_id:guid}/status", methods=["PATCH"])
@admin_only
async def change_registration_status(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.decide_registration(
        route_uuid(req, "registration_id"),
        parse_json_body(req, StatusChange),
        caller,
        if_match=req.headers.get("if-match"),
    )


@app.route(route="registrations/{registration_id:guid}/lifecycle", methods=["PATCH"])
@admin_only
async def change_registration_lifecycle(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.change_lifecycle(
        route_uuid(req, "registration_id"), parse_json_body(req, LifecycleChange), caller
    )


@app.route(route="registrations/{registration_id:guid}/verification", methods=["POST"])
@admin_only
async def verify_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await verification.verify_registration_response(route_uuid(req, "registration_id"), caller)


@app.route(route="registrations/{registration_id:guid}/verification/approve-tools", methods=["POST"])
@admin_only
async def approve_registration_tools(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await verification.approve_tools_response(
        route_uuid(req, "registration_id"), parse_json_body(req, ToolSetApproval), caller
    )


# Re-probes Approved registrations (PROBE_SCHEDULE, NCRONTAB in UTC; read when the app is indexed, as the
# host reads a schedule). Not on startup: a scale-out or restart must not start an extra round of probes.
@app.timer_trigger(schedule=probe_schedule(), arg_name="timer", run_on_startup=False, use_monitor=True)
async def probe_approved_servers(timer: func.TimerRequest) -> None:
    await verification.run_scheduled_probes()


@app.route(route="registrations/{registration_id:guid}", methods=["DELETE"])
@admin_only
async def delete_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await registrations.delete_registration(route_uuid(req, "registration_id"), caller)


@app.route(route="audit-logs", methods=["GET"])
@admin_only
async def list_audit_logs(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await audit.list_audit_logs(parse_query(req, AuditLogQuery))


@app.route(route="v0.1/servers/{*rest}", methods=["GET", "OPTIONS"])
@public
async def mcp_registry_servers(req: func.HttpRequest) -> func.HttpResponse:
    return await registry_servers_response(req)


@app.route(route="v0.1/allowlist", methods=["GET"])
@admin_only
async def mcp_registry_allowlist(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await allowlist_response(parse_query(req, AllowlistQuery).include_deprecated)


@app.route(route="v0.1/validate", methods=["POST"])
@authenticated
async def validate_server_json(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return publishing.validate_response(read_json_object(req), caller)


@app.route(route="v0.1/publish", methods=["POST"])
@authenticated
async def publish_server_json(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return await publishing.publish(read_json_object(req), caller, base_url=registrations_url(req))


@app.route(route="openapi.json", methods=["GET"])
@public
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.document_response(app)


@app.route(route="docs", methods=["GET"])
@public
async def docs_page(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.docs_page_response()


@app.route(route="docs/{asset}", methods=["GET"])
@public
async def docs_asset(req: func.HttpRequest) -> func.HttpResponse:
    return openapi.docs_asset_response(req.route_params.get("asset", ""))
