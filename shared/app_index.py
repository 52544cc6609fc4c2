"""The function app's HTTP functions, indexed once per app object and shared by everyone who reads them.

`FunctionApp.get_functions()` may be called only once per app object (a second call fails its
duplicate-name check). The local host, the OpenAPI document and the tests all need the indexed
functions, so they all take them from `indexed_functions`. In Azure the Python worker indexes the app
itself before any request; a later caller here then builds the same `Function` objects from the app's
function builders (what `get_functions()` does, without its once-only name registry).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger

_lock = threading.Lock()
_indexed: weakref.WeakKeyDictionary[func.FunctionApp, tuple[func.Function, ...]] = weakref.WeakKeyDictionary()


def indexed_functions(app: func.FunctionApp) -> tuple[func.Function, ...]:
    """The app's functions in registration order (the order the host matches routes in)."""
    with _lock:
        cached = _indexed.get(app)
        if cached is None:
            if app.functions_bindings:
                # Already indexed by someone else (the worker): rebuild without re-registering names.
                builders = app._function_builders
                cached = tuple(builder.build(app.auth_level) for builder in builders)
            else:
                cached = tuple(app.get_functions())
            _indexed[app] = cached
        return cached


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP-triggered function: its name, route template (without the route prefix) and methods."""

    name: str
    route: str
    methods: frozenset[str] | None  # None: every method
    trigger_arg: str


def http_routes(app: func.FunctionApp) -> list[HttpRoute]:
    routes = []
    for function in indexed_functions(app):
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        name = function.get_function_name() or function.get_user_function().__name__
        methods = (
            frozenset(str(getattr(method, "value", method)).upper() for method in trigger.methods)
            if trigger.methods
            else None
        )
        routes.append(HttpRoute(name=name, route=trigger.route or name, methods=methods, trigger_arg=trigger.name))
    return routes
