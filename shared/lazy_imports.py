"""Modules loaded on first use, so that indexing the function app does not pay for them.

The Functions worker imports `function_app` to index its functions before the first request. Every module
that defines a pydantic model loads pydantic's model machinery (~30 ms) and builds its classes (another
~20 ms for the API's models and settings): half of `import function_app` on top of its dependencies
(bench/RESULTS.md, "Cold start against the dependencies"). The triggers and auth decorators need none of
that to be indexed, so the modules behind them are named here and loaded when a request first uses one.

    if TYPE_CHECKING:
        from shared import registrations
    else:
        registrations = lazy_module("shared.registrations")

`lazy_module` is the standard library's recipe (importlib.util.LazyLoader): the module object exists at
once and its code runs on the first attribute read. The type checker sees an ordinary import. Our triggers
are coroutines, which the worker runs on its one event-loop thread, so a first use never races another
(Python 3.11's LazyLoader is not safe for two threads loading the same module at once).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`: the loaded one when it is loaded, else one whose code runs on first attribute read."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module
