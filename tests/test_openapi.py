"""The OpenAPI document and the app agree: every registered route is documented, every documented
operation exists (in the app's index and on a running host), the document is valid OpenAPI 3.1, its
schemas are the pydantic models' own, and the docs page serves its assets locally and safely."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import azure.functions as func
import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

import function_app
from devtools.local_host import RouteMatcher
from shared import openapi
from shared.app_index import http_routes, indexed_functions
from shared.auth import admin_only, authenticated
from shared.errors import ApiError, NotFound
from shared.http import public
from shared.openapi import REF_TEMPLATE, build_document, undocumented_functions
from shared.operations import Operation, auth_of, model_named, operations_of
from shared.routes import route_prefix
from shared.tokens import Caller
from tests.support.app_index import indexed_functions as indexed_by_tests
from tests.support.issuer import bearer

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(function_app.app)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def app_function_methods() -> dict[str, frozenset[str]]:
    """Function name → methods, read from the app's index (not through shared.openapi)."""
    return {route.name: route.methods or frozenset({"GET"}) for route in http_routes(function_app.app)}


def app_templates() -> dict[str, RouteMatcher]:
    return {route.name: RouteMatcher.compile(route_prefix(), route.route) for route in http_routes(function_app.app)}


def concrete(path: str) -> str:
    """A request path for a documented path template: each parameter a GUID (a valid value for every
    parameter the app declares) — the literals are what must route."""
    return re.sub(r"\{[^{}]+\}", lambda _: str(uuid.uuid4()), path)


# ---------------------------------------------------------------- the app and the document agree


def test_every_registered_function_and_method_is_documented(document: dict[str, Any]) -> None:
    documented: dict[str, set[str]] = {}
    for _, method, operation in operations(document):
        documented.setdefault(operation["x-function"], set()).add(method)
    for name, methods in app_function_methods().items():
        assert documented.get(name) == set(methods), (name, sorted(methods), sorted(documented.get(name, ())))


def test_no_registered_function_lacks_a_description(document: dict[str, Any]) -> None:
    assert undocumented_functions(function_app.app) == []
    assert [op["operationId"] for _, _, op in operations(document) if op.get("x-undocumented")] == []
    for route in http_routes(function_app.app):
        assert operations_of(route.handler), route.name
        assert auth_of(route.handler) in {"public", "user", "admin"}, route.name


def test_every_documented_operation_is_a_route_and_method_of_the_app(document: dict[str, Any]) -> None:
    templates = app_templates()
    methods = app_function_methods()
    for path, method, operation in operations(document):
        name = operation["x-function"]
        assert name in templates, (path, method, name)
        assert method in methods[name], (path, method, name)
        # The documented path is one the function's route template takes, and no earlier function's.
        request_path = concrete(path).lstrip("/")
        assert templates[name].match(request_path) is not None, (path, name)
        first = next(n for n, template in templates.items() if template.match(request_path) is not None and method in methods[n])
        assert first == name, (path, method, first, name)


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)), ids


def test_a_new_route_without_a_description_is_reported_and_still_served() -> None:
    # Negative control for the agreement checks: an app with one described and one new function.
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @public
    @Operation("Is it up?")
    async def health(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    async def brand_new_thing(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    app.route(route="health", methods=["GET"])(health)
    app.route(route="things/{thing_id:int}", methods=["GET", "PUT"])(brand_new_thing)
    assert undocumented_functions(app) == ["brand_new_thing"]
    document = build_document(app, prefix="api")
    undocumented = document["paths"]["/api/things/{thing_id}"]
    assert set(undocumented) == {"get", "put"}
    assert all(op["x-undocumented"] for op in undocumented.values())
    assert "x-undocumented" not in document["paths"]["/api/health"]["get"]
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_app_index_is_shared_and_survives_a_prior_get_functions_call() -> None:
    assert indexed_functions(function_app.app) is indexed_functions(function_app.app)
    assert indexed_functions(function_app.app) is indexed_by_tests()

    # As in Azure: the worker calls get_functions() itself before anything of ours runs.
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    async def one(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    app.route(route="one/{one_id:guid}", methods=["GET"])(one)
    by_worker = app.get_functions()
    ours = indexed_functions(app)
    assert [f.get_function_name() for f in ours] == [f.get_function_name() for f in by_worker]
    assert [(route.name, route.route, route.methods) for route in http_routes(app)] == [
        ("one", "one/{one_id:guid}", frozenset({"GET"}))
    ]


def test_indexing_the_app_first_leaves_the_worker_able_to_index_it() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    async def two(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    app.route(route="two", methods=["GET"])(two)
    ours = indexed_functions(app)
    by_worker = app.get_functions()  # the worker's own call after ours: no duplicate-name refusal
    assert [f.get_function_name() for f in by_worker] == [f.get_function_name() for f in ours] == ["two"]


# ---------------------------------------------------------------- a valid OpenAPI 3.1 document


def test_the_document_validates_against_the_openapi_3_1_meta_schema(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_every_schema_reference_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])


# ---------------------------------------------------------------- schemas are the models' own


def _model_schema(name: str, mode: str) -> dict[str, Any]:
    schema = model_named(name).model_json_schema(ref_template=REF_TEMPLATE, mode=mode)  # type: ignore[arg-type]
    schema.pop("$defs", None)
    return openapi._strip_titles(schema)  # type: ignore[no-any-return]


def entry_of(path: str, method: str, operation: dict[str, Any]) -> Operation:
    """The declaration a documented operation was built from."""
    handlers = {route.name: route.handler for route in http_routes(function_app.app)}
    entries = operations_of(handlers[operation["x-function"]])
    if len(entries) == 1:
        return entries[0]
    prefix = route_prefix()
    (entry,) = [e for e in entries if e.path and openapi.openapi_path(prefix, e.path)[0] == path and e.method == method]
    return entry


def test_bodies_and_responses_are_the_models_json_schemas(document: dict[str, Any]) -> None:
    checked = 0
    components = document["components"]["schemas"]
    for path, method, operation in operations(document):
        for entry in [entry_of(path, method, operation)]:
            if entry.body is not None:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[1]
                assert components[name] == _model_schema(entry.body, "validation"), name
                checked += 1
            if entry.response is not None:
                success = operation["responses"][str(entry.status)]
                ref = success["content"]["application/json"]["schema"]["$ref"]
                name = ref.rsplit("/", 1)[1]
                assert components[name] == _model_schema(entry.response, "serialization"), name
                checked += 1
    assert checked >= 15


def test_query_parameters_carry_the_query_models_fields_and_bounds(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/registrations"]["get"]
    parameters = {p["name"]: p for p in listing["parameters"]}
    assert set(parameters) == {"status", "submitter_id", "search", "limit", "offset"}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert parameters["offset"]["schema"]["minimum"] == 0
    assert parameters["status"]["schema"]["enum"] == ["Pending", "Approved", "Rejected"]
    assert parameters["submitter_id"]["schema"]["format"] == "uuid"
    assert parameters["search"]["schema"]["maxLength"] == 200
    assert not any(p["required"] for p in parameters.values())
    audit = {p["name"]: p for p in document["paths"]["/api/audit-logs"]["get"]["parameters"]}
    assert {"from", "to"} <= set(audit)
    assert audit["from"]["schema"]["anyOf"] == [{"format": "date-time"}, {"format": "date"}]
    assert audit["limit"]["schema"]["maximum"] == 200
    by_url = {p["name"]: p for p in document["paths"]["/api/registrations/by-url"]["get"]["parameters"]}
    assert by_url["endpoint_url"]["required"] is True
    # No query parameter is documented as nullable: an absent parameter is the null.
    for _, _, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert "null" not in json.dumps(parameter["schema"]), (operation["operationId"], parameter)


def test_path_parameters_follow_the_route_constraints(document: dict[str, Any]) -> None:
    get = document["paths"]["/api/registrations/{registration_id}"]["get"]
    assert get["parameters"][0] | {"description": ""} == {
        "name": "registration_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": "",
    }


# ---------------------------------------------------------------- errors, security and headers


def _error_codes(response: dict[str, Any]) -> set[str]:
    schema = response["content"]["application/json"]["schema"]
    return set(schema["allOf"][1]["properties"]["error_code"]["enum"])


def test_every_error_status_an_endpoint_can_return_is_documented_with_its_codes(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/registrations"]["post"]["responses"]
    assert {"400", "401", "409", "413", "415", "422", "500", "503"} <= set(create)
    assert _error_codes(create["400"]) == {"INVALID_JSON"}
    assert _error_codes(create["409"]) == {"DUPLICATE_ENDPOINT", "DUPLICATE_SERVER_NAME"}
    update = document["paths"]["/api/registrations/{registration_id}"]["patch"]["responses"]
    assert {"403", "404", "409", "412"} <= set(update)
    status = document["paths"]["/api/registrations/{registration_id}/status"]["patch"]["responses"]
    assert _error_codes(status["409"]) == {"INVALID_STATE_TRANSITION"}
    assert _error_codes(status["403"]) == {"FORBIDDEN"}
    listing = document["paths"]["/api/registrations"]["get"]["responses"]
    assert _error_codes(listing["400"]) == {"INVALID_QUERY"}
    assert "403" not in listing  # any signed-in user may list
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "error_code"}
    assert {"field_errors", "registration_id", "invocation_id"} <= set(error["properties"])
    # Every documented error code is one the API defines.
    known = {cls.error_code for cls in _all_subclasses(ApiError)}
    for _, _, operation in operations(document):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if int(status) >= 400 and "allOf" in schema:
                assert _error_codes(response) <= known, (operation["operationId"], status)


def _all_subclasses(cls: type[ApiError]) -> set[type[ApiError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def _anonymous_in_the_contract(path: str) -> bool:
    """API.md: health, the API description and the MCP Registry reads are anonymous; all else needs a token."""
    return path in {"/api/health", "/api/openapi.json"} or path.startswith(("/api/docs", "/api/v0.1/servers"))


def test_security_is_bearer_except_health_the_document_the_docs_and_the_mcp_registry(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for path, method, operation in operations(document):
        if _anonymous_in_the_contract(path):
            assert operation["x-auth"] == "public", (path, method)
            assert operation["security"] == [], (path, method)
            assert "401" not in operation["responses"], (path, method)
        else:
            assert operation["x-auth"] in {"user", "admin"}, (path, method)
            assert operation["security"] == [{"bearerAuth": []}], (path, method)
            unauthenticated = operation["responses"]["401"]
            assert unauthenticated["headers"]["WWW-Authenticate"]["required"] is True


async def test_the_documented_auth_level_is_what_the_running_host_enforces(
    api: httpx.AsyncClient, document: dict[str, Any], user_token: Callable[..., str]
) -> None:
    signed_in = bearer(user_token())
    checked = {"public": 0, "user": 0, "admin": 0}
    for path, method, operation in operations(document):
        auth = operation["x-auth"]
        anonymous = await api.request(method, concrete(path))
        assert (anonymous.status_code == 401) == (auth != "public"), (method, path, anonymous.status_code)
        if auth != "public":
            as_user = await api.request(method, concrete(path), headers=signed_in)
            assert as_user.status_code != 401, (method, path)
            refused = as_user.status_code == 403 and as_user.json()["detail"] == "This action requires the admin role"
            assert refused == (auth == "admin"), (method, path, as_user.status_code)
        checked[auth] += 1
    assert all(checked.values()), checked


def _one_endpoint_app(auth_decorator: Callable[[Any], Any]) -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="things/{thing_id:guid}", methods=["DELETE"])
    @auth_decorator
    @Operation("Delete a thing", status=204, errors=(NotFound,))
    async def delete_thing(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
        return func.HttpResponse(status_code=204)

    return app


def test_switching_a_triggers_auth_decorator_switches_what_the_document_says() -> None:
    as_user, as_admin = (
        build_document(_one_endpoint_app(decorator), prefix="api")["paths"]["/api/things/{thing_id}"]["delete"]
        for decorator in (authenticated, admin_only)
    )
    assert (as_user["x-auth"], as_admin["x-auth"]) == ("user", "admin")
    assert as_user["security"] == as_admin["security"] == [{"bearerAuth": []}]
    assert "401" in as_user["responses"] and "401" in as_admin["responses"]
    assert "403" not in as_user["responses"]
    assert _error_codes(as_admin["responses"]["403"]) == {"FORBIDDEN"}
    assert "Admin only" in as_admin["description"] and "description" not in as_user


def test_a_public_trigger_is_documented_without_security_or_401() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="things", methods=["GET"])
    @public
    @Operation("List things")
    async def list_things(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("[]")

    listing = build_document(app, prefix="api")["paths"]["/api/things"]["get"]
    assert listing["x-auth"] == "public" and listing["security"] == []
    assert not {"401", "403", "503"} & set(listing["responses"])


def test_a_trigger_without_an_auth_decorator_is_reported_undocumented() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="things", methods=["GET"])
    @Operation("List things")
    async def list_things(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("[]")

    assert undocumented_functions(app) == ["list_things"]
    assert build_document(app, prefix="api")["paths"]["/api/things"]["get"]["x-undocumented"] is True


def test_etag_location_if_match_and_retry_after_are_documented_where_they_apply(document: dict[str, Any]) -> None:
    created = document["paths"]["/api/registrations"]["post"]["responses"]["201"]
    assert set(created["headers"]) == {"ETag", "Location"}
    for path, method in [
        ("/api/registrations/{registration_id}", "get"),
        ("/api/registrations/{registration_id}", "patch"),
        ("/api/registrations/{registration_id}/status", "patch"),
        ("/api/registrations/by-url", "get"),
    ]:
        assert "ETag" in document["paths"][path][method]["responses"]["200"]["headers"], path
    patch = document["paths"]["/api/registrations/{registration_id}"]["patch"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    assert "Retry-After" in patch["responses"]["503"]["headers"]
    health = document["paths"]["/api/health"]["get"]["responses"]
    assert health["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HealthReport"}


def test_create_links_to_get_patch_status_and_delete(document: dict[str, Any]) -> None:
    links = document["paths"]["/api/registrations"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "get_registration",
        "update_registration",
        "change_registration_status",
        "delete_registration",
    }
    ids = {operation["operationId"] for _, _, operation in operations(document)}
    for _, _, operation in operations(document):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids


# ---------------------------------------------------------------- served by the app


async def test_the_document_is_served_anonymously_and_is_the_built_one(
    api: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    response = await api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == json.loads(json.dumps(document))
    # A bad token on a public endpoint is ignored, not refused.
    again = await api.get("/api/openapi.json", headers={"Authorization": "Bearer not-a-token"})
    assert again.status_code == 200 and again.json() == response.json()


async def test_every_documented_operation_exists_on_the_running_host(
    api: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    for path, method, _ in operations(document):
        response = await api.request(method, concrete(path))
        assert response.status_code != 405, (method, path)
        if response.status_code == 404:
            assert response.json().get("detail") != "No function matches this path", (method, path)


async def test_the_docs_page_and_its_assets_are_served_locally(api: httpx.AsyncClient) -> None:
    page = await api.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/api/docs/") for source in sources), sources
    for source in sources:
        asset = await api.get(source)
        assert asset.status_code == 200, source
        assert asset.content
    css = await api.get("/api/docs/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    init = await api.get("/api/docs/initializer.js")
    assert '"/api/openapi.json"' in init.text and init.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/..%2F..%2Fpyproject.toml",
        "/api/docs/..%2f__init__.py",
        "/api/docs/%2e%2e",
        "/api/docs/__init__.py",
        "/api/docs/index.html",
        "/api/docs/.hidden.js",
        "/api/docs/%2Fetc%2Fpasswd",
        "/api/docs/swagger-ui.css%00.png",
        "/api/docs/SWAGGER-UI.CSS",
    ],
)
async def test_docs_assets_refuse_anything_but_the_packaged_files(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert response.json()["error_code"] == "NOT_FOUND"
    assert b"[project]" not in response.content and b"root:" not in response.content
