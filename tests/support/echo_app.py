"""A tiny FunctionApp for testing the local host: it echoes what the host handed to the function.

`make_app()` builds a fresh app each time (get_functions() may be called only once per app object);
`app` is the one `python -m devtools.local_host --app tests.support.echo_app:app` serves.
"""

from __future__ import annotations

import base64
import json

import azure.functions as func


def describe(req: func.HttpRequest, function: str, context: func.Context | None = None) -> func.HttpResponse:
    body = req.get_body()
    lookups = {name: req.headers.get(name) for name in ("X-Test-Header", "x-test-header", "X-TEST-HEADER")}
    payload = {
        "function": function,
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "headers": dict(req.headers.items()),
        "header_lookups": lookups,
        "body_b64": base64.b64encode(body).decode("ascii"),
        "invocation_id": getattr(context, "invocation_id", None),
        "context_function_name": getattr(context, "function_name", None),
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json")


def make_app(literal_first: bool = False) -> func.FunctionApp:
    """Echo routes, plus `registrations/my` beside `registrations/{registration_id:guid}`, registered
    with the parameter route first unless told otherwise (the order that would break an app relying on
    "literal beats parameter")."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    async def registration_by_id(req: func.HttpRequest) -> func.HttpResponse:
        return describe(req, "registration_by_id")

    async def my_registrations(req: func.HttpRequest) -> func.HttpResponse:
        return describe(req, "my_registrations")

    by_id = ("registrations/{registration_id:guid}", ["GET"], registration_by_id)
    mine = ("registrations/my", ["GET"], my_registrations)
    for route, methods, handler in [mine, by_id] if literal_first else [by_id, mine]:
        app.route(route=route, methods=methods)(handler)

    @app.route(route="echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return describe(req, "echo", context)

    @app.route(route="echo/raw", methods=["POST", "PUT"])
    async def echo_raw(req: func.HttpRequest) -> func.HttpResponse:
        content_type = req.headers.get("content-type") or "application/octet-stream"
        return func.HttpResponse(req.get_body(), headers={"Content-Type": content_type})

    return app


app = make_app()
