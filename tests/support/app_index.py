"""The project's functions as the Python worker indexes them, read once per test process.

`FunctionApp.get_functions()` may be called only once per app object (a second call raises), so every
test that needs the indexed functions of `function_app.app` takes them from here (and this, like the local
host and the OpenAPI document, from `shared.app_index`).
"""

from __future__ import annotations

from functools import cache

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger

from shared.app_index import indexed_functions as app_functions


@cache
def indexed_functions() -> tuple[func.Function, ...]:
    import function_app

    return app_functions(function_app.app)


def http_functions() -> tuple[func.Function, ...]:
    """The HTTP-triggered functions (every function but the timers)."""
    return tuple(function for function in indexed_functions() if isinstance(function.get_trigger(), HttpTrigger))


def timer_functions() -> tuple[func.Function, ...]:
    return tuple(
        function for function in indexed_functions() if function.get_trigger().get_binding_name() == "timerTrigger"
    )
