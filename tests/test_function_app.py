"""The app indexes like the real Python worker, and no request can match two of its functions.

The host matches routes in registration order with no "literal beats parameter" rule, so the app must
never depend on order: these tests prove, generically over whatever routes the app has, that every
path one function answers is answered by no other function with an overlapping method.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
import typing
import uuid
from collections.abc import Callable

import azure.functions as func
import pytest
from azure.functions.decorators.http import HttpTrigger

import function_app
from devtools.local_host import RouteMatcher
from shared.app_index import HttpRoute, http_routes
from shared.routes import RouteParameter, RouteTemplate, route_prefix
from tests.support.app_index import http_functions, indexed_functions, timer_functions
from tests.support.host import LocalHostProcess

ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"})
# The host's rule for function names.
_FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$")


# ---------------------------------------------------------------- the overlap checker


def _literal_words(templates: list[RouteTemplate]) -> set[str]:
    return {
        segment[0] for template in templates for segment in template.segments if len(segment) == 1 and isinstance(segment[0], str)
    }


def sample_paths(template: RouteTemplate, words: set[str]) -> list[str]:
    """Paths built from a full route template: literals as written and upper-cased, and each
    parameter replaced by a GUID, a number, a boolean, a plain word and every literal of the app."""
    choices: list[list[str | None]] = []
    for segment in template.segments:
        match segment:
            case (RouteParameter() as parameter,):
                values: list[str | None] = [str(uuid.uuid4()), str(uuid.uuid4()).upper(), "x", "1", "true"]
                values += sorted(words)
                if parameter.optional or parameter.catch_all:
                    values.append(None)  # the segment left out
                if parameter.catch_all:
                    values.append("a/b")
                choices.append(values)
            case (str() as literal,):
                choices.append([literal, literal.upper()])
            case _:
                choices.append(["".join(part if isinstance(part, str) else "x" for part in segment)])
    return ["/".join(part for part in combination if part is not None) for combination in itertools.product(*choices)]


def overlapping_matches(routes: list[HttpRoute], prefix: str) -> list[tuple[str, str, str]]:
    """(path, first function, second function) for every sample path two functions would both take."""
    matchers = {route.name: RouteMatcher.compile(prefix, route.route) for route in routes}
    words = _literal_words([RouteTemplate.parse(prefix, route.route) for route in routes])
    conflicts = []
    for first, second in itertools.permutations(routes, 2):
        if not (first.methods or ALL_METHODS) & (second.methods or ALL_METHODS):
            continue
        for path in sample_paths(RouteTemplate.parse(prefix, first.route), words):
            if matchers[first.name].match(path) is not None and matchers[second.name].match(path) is not None:
                conflicts.append((path, first.name, second.name))
    return conflicts


def _app_with_routes(*routes: tuple[str, str, list[str] | None]) -> list[HttpRoute]:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for name, route, methods in routes:

        async def handler(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("ok")

        handler.__name__ = name
        app.route(route=route, methods=methods)(handler)
    return http_routes(app)


# ---------------------------------------------------------------- worker indexing


def test_app_has_functions_and_each_has_exactly_one_trigger_http_or_the_probe_timer() -> None:
    functions = indexed_functions()
    assert functions, "function_app.app indexes no functions"
    assert set(functions) == set(http_functions()) | set(timer_functions())
    assert [str(function.get_function_name()) for function in timer_functions()] == ["probe_approved_servers"]
    for function in http_functions():
        triggers = [binding for binding in function.get_bindings() if binding.type.endswith("Trigger")]
        assert len(triggers) == 1, function.get_function_name()
        assert triggers[0].type == "httpTrigger"
        assert isinstance(function.get_trigger(), HttpTrigger)
        outputs = [b for b in function.get_bindings() if b.name == "$return"]
        assert [b.type for b in outputs] == ["http"], function.get_function_name()


def test_function_names_are_unique_and_valid_for_the_host() -> None:
    names = [str(function.get_function_name()) for function in indexed_functions()]
    # The host compares function names case-insensitively.
    assert len({name.lower() for name in names}) == len(names), names
    for name in names:
        assert _FUNCTION_NAME.match(name), name


def test_every_function_is_anonymous_at_the_host() -> None:
    for function in http_functions():
        trigger = function.get_trigger()
        assert isinstance(trigger, HttpTrigger)
        assert trigger.auth_level == func.AuthLevel.ANONYMOUS, function.get_function_name()
        binding = json.loads(function.get_raw_bindings()[0])
        assert binding["authLevel"] == "ANONYMOUS"


def test_user_functions_are_async_and_take_exactly_req_and_context() -> None:
    for function in http_functions():
        trigger = function.get_trigger()
        user_function = function.get_user_function()
        assert trigger.name == "req", function.get_function_name()
        assert inspect.iscoroutinefunction(user_function), function.get_function_name()
        # The worker binds parameters by name: each must be a binding or `context`.
        parameters = list(inspect.signature(user_function).parameters)
        assert parameters == ["req", "context"], (function.get_function_name(), parameters)


def test_the_worker_reads_every_functions_type_hints_as_types() -> None:
    """The Python worker loads a function with `typing.get_type_hints(func)` (evaluated in the module that
    wrote the innermost wrapped function) and checks `context` is azure.functions.Context: names only a type
    checker imports (function_app's `Caller`) must not reach it."""
    for function in http_functions():
        hints = typing.get_type_hints(function.get_user_function())
        assert hints == {"req": func.HttpRequest, "context": func.Context, "return": func.HttpResponse}, (
            function.get_function_name()
        )
    (timer,) = timer_functions()
    assert typing.get_type_hints(timer.get_user_function()) == {"timer": func.TimerRequest, "return": type(None)}


def test_function_json_is_what_the_worker_sends_to_the_host() -> None:
    for function in http_functions():
        document = json.loads(function.get_function_json())
        assert document["scriptFile"] == "function_app.py"
        directions = sorted(binding["direction"] for binding in document["bindings"])
        assert directions == ["IN", "OUT"]


def test_no_route_uses_the_hosts_reserved_admin_prefix() -> None:
    for route in http_routes(function_app.app):
        assert not route.route.lower().startswith("admin"), route.name


def test_the_probe_timer_is_async_binds_timer_and_runs_on_the_default_schedule_not_at_startup() -> None:
    (function,) = timer_functions()
    document = json.loads(function.get_function_json())
    (binding,) = document["bindings"]
    assert binding == {
        "type": "timerTrigger",
        "direction": "IN",
        "name": "timer",
        "schedule": "0 0 */6 * * *",
        "runOnStartup": False,
        "useMonitor": True,
    }
    user_function = function.get_user_function()
    assert inspect.iscoroutinefunction(user_function)
    assert list(inspect.signature(user_function).parameters) == ["timer"]


# ---------------------------------------------------------------- no two functions match one request


def test_no_request_path_matches_two_functions_of_the_app() -> None:
    conflicts = overlapping_matches(http_routes(function_app.app), route_prefix())
    assert conflicts == []


def test_the_overlap_check_finds_a_literal_shadowed_by_an_unconstrained_parameter() -> None:
    # The classic order bug: `servers/search` can be taken by `servers/{server_id}`.
    functions = _app_with_routes(
        ("get_server", "servers/{server_id}", ["GET"]), ("search_servers", "servers/search", ["GET"])
    )
    conflicts = overlapping_matches(functions, "api")
    assert ("api/servers/search", "search_servers", "get_server") in conflicts


def test_the_overlap_check_finds_the_same_template_twice_with_overlapping_methods() -> None:
    functions = _app_with_routes(("one", "items", None), ("two", "Items/", ["POST"]))
    assert overlapping_matches(functions, "api")


def test_the_overlap_check_accepts_disjoint_methods_and_guid_constrained_ids() -> None:
    functions = _app_with_routes(
        ("list_registrations", "registrations", ["GET"]),
        ("create_registration", "registrations", ["POST"]),
        ("get_registration", "registrations/{registration_id:guid}", ["GET"]),
        ("my_registrations", "registrations/my", ["GET"]),
        ("by_url", "registrations/by-url", ["GET"]),
    )
    assert overlapping_matches(functions, "api") == []


def test_sample_paths_cover_literals_in_any_case_and_every_kind_of_parameter_value() -> None:
    literal_paths = sample_paths(RouteTemplate.parse("api", "registrations/my"), set())
    assert {"api/registrations/my", "API/REGISTRATIONS/MY", "api/REGISTRATIONS/my"} <= set(literal_paths)
    parameter_paths = sample_paths(RouteTemplate.parse("api", "a/{x:guid}"), {"my"})
    assert "api/a/my" in parameter_paths and "api/a/x" in parameter_paths
    assert any(RouteMatcher.compile("api", "a/{x:guid}").match(path) is not None for path in parameter_paths)


# ---------------------------------------------------------------- a fresh worker's first request

SPA = "http://localhost:5173"
# The clients' exact first requests (issues 13 and 19): VS Code's version probe from its webview origin, the
# frontend's Browse page and its profile read, each the first request a freshly started worker serves, which
# loads the modules behind that trigger then (shared/lazy_imports.py).
FIRST_REQUESTS = {
    "vs_code_probe": ("/api/v0.1/servers?limit=1", {"Origin": "vscode-file://vscode-app"}, False, "servers"),
    "frontend_browse_page": ("/api/registrations?limit=1000", {"Origin": SPA}, True, "results"),
    "frontend_profile": ("/api/users/me", {"Origin": SPA}, True, "user_id"),
}


@pytest.mark.parametrize("name", sorted(FIRST_REQUESTS))
async def test_a_fresh_worker_answers_a_real_clients_first_request(
    name: str, start_host: Callable[..., LocalHostProcess], user_token: Callable[..., str]
) -> None:
    path, headers, signed_in, answer_field = FIRST_REQUESTS[name]
    if signed_in:
        headers = {**headers, "Authorization": f"Bearer {user_token()}"}
    async with start_host(cors=SPA).client() as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", SPA)
    assert answer_field in response.json()
