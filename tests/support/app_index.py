"""The project's functions as the Python worker indexes them, read once per test process.

`FunctionApp.get_functions()` may be called only once per app object (a second call raises), so every
test that needs the indexed functions of `function_app.app` takes them from here.
"""

from __future__ import annotations

from functools import cache

import azure.functions as func


@cache
def indexed_functions() -> tuple[func.Function, ...]:
    import function_app

    return tuple(function_app.app.get_functions())
