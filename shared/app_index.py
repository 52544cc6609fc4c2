"""The function app's HTTP functions, indexed once per app object and shared by everyone who reads them.

`FunctionApp.get_functions()` records every function name in the app's public `functions_bindings` and
refuses a name it has already recorded, so a second call on the same app fails. The OpenAPI document, the
local host and the tests all need the indexed functions, so they all take them from `indexed_functions`. In
Azure the Python worker indexes the app itself before any request; our call indexes it again with the name
record cleared for that call and put back as it was, so neither indexing stops the other. `get_functions()`
builds the same `Function` objects each time, so both see the same functions. Only the library's public
API is used (`get_functions`, `functions_bindings`, each function's trigger and names).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger

_lock = threading.Lock()
_indexed: weakref.WeakKeyDictionary[func.FunctionApp, tuple[func.Function, ...]] = weakref.WeakKeyDictionary()


def indexed_functions(app: func.FunctionApp) -> tuple[func.Function, ...]:
    """The app's functions in registration order (the order the host matches routes in)."""
    with _lock:
        cached = _indexed.get(app)
        if cached is None:
            # Indexed before (by the worker), its names would count as duplicates; and ours must not stop the
            # worker from indexing after us. So the record is cleared for our call and put back as it was.
            recorded = app.functions_bindings
            app.functions_bindings = None
            try:
                cached = tuple(app.get_functions())
            finally:
                app.functions_bindings = recorded
            _indexed[app] = cached
        return cached


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP-triggered function: its name, route template (without the route prefix), methods, the name of
    its request argument and the Python function itself."""

    name: str
    route: str
    methods: frozenset[str] | None  # None: every method
    trigger_arg: str
    handler: Callable[..., Any]


def http_routes(app: func.FunctionApp) -> list[HttpRoute]:
    routes = []
    for function in indexed_functions(app):
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        handler = function.get_user_function()
        name = function.get_function_name() or handler.__name__
        routes.append(
            HttpRoute(
                name=name,
                route=trigger.route or name,
                methods=trigger_methods(trigger),
                trigger_arg=trigger.name,
                handler=handler,
            )
        )
    return routes


def trigger_methods(trigger: HttpTrigger) -> frozenset[str] | None:
    """The upper-case methods an HTTP trigger takes (given as strings or `func.HttpMethod`); None: every one."""
    if not trigger.methods:
        return None
    return frozenset(str(getattr(method, "value", method)).upper() for method in trigger.methods)
