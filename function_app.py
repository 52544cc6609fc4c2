"""The MCP Registry API: one HTTP trigger per endpoint (Azure Functions, Python v2 programming model).

Triggers only parse the request, call one function in `shared/` and return its response. Routes are
written so that no request path can match two of them: the host matches routes in registration order
with no "literal beats parameter" rule, so ids are constrained (`{registration_id:guid}`).
"""

import azure.functions as func

from shared.health import health_response
from shared.http import public

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
@public
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return await health_response()
