"""The MCP Registry API: one HTTP trigger per endpoint (Azure Functions, Python v2 programming model).

Triggers only parse the request, call one function in `shared/` and return its response. Routes are
written so that no request path can match two of them: the host matches routes in registration order
with no "literal beats parameter" rule, so ids are constrained (`{registration_id:guid}`).
"""

import azure.functions as func

from shared.auth import Caller, authenticated
from shared.health import health_response
from shared.http import public, route_uuid
from shared.users import get_user_response, sign_in_response

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
