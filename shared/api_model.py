"""The base of the API's pydantic models (request bodies, queries, responses)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """A model whose validator and serializer are built on its first use, not when its class is defined: a
    request needs only its own models, and indexing the app needs none (`import function_app` 68.3 → 59.5 ms
    after its dependencies, see bench/RESULTS.md). Subclasses' own `model_config` adds to this one."""

    model_config = ConfigDict(defer_build=True)
