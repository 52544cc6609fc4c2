"""What each endpoint declares about itself, at its trigger in function_app.py: the API description's source.

Two records sit on every HTTP trigger function. The auth decorator actually applied (`@public` in
shared/http.py, `@authenticated` / `@admin_only` in shared/auth.py) records its level when it builds the
trigger; `@Operation(...)` records the summary, the query/body/response models and the errors. Route and
methods are the `app.route` call's own. shared/openapi.py builds the document from these and from nothing
else, so switching a trigger's auth decorator switches what the document says.

    @app.route(route="registrations/{registration_id:guid}", methods=["PATCH"])
    @authenticated
    @Operation("Edit a registration's metadata", response="Registration", body="RegistrationUpdate", errors=(NotFound,))
    async def update_registration(req: func.HttpRequest, caller: Caller) -> func.HttpResponse: ...

Models are named, not imported: a declaration names a class of shared.models or shared.verification_models
(`model_named` finds it when the document is built), so indexing the app builds no pydantic model
(shared/lazy_imports.py says why). The document's tests fail on a name that is not a model.

A catch-all route that answers several concrete paths stacks one `@Operation(path=..., method=...)` per
path; the document lists them in the order written. The records are plain attributes of the function;
`functools.wraps` carries them from a handler to the trigger that wraps it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic

from shared.errors import ApiError
from shared.lazy_imports import lazy_module

if TYPE_CHECKING:
    from shared import models, verification_models
else:
    models = lazy_module("shared.models")
    verification_models = lazy_module("shared.verification_models")

Auth = Literal["public", "user", "admin"]
Function = TypeVar("Function", bound=Callable[..., Any])

_AUTH_ATTRIBUTE = "api_auth"
_OPERATIONS_ATTRIBUTE = "api_operations"


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from an operation's success response to another operation (stateful clients)."""

    operation: str  # the target's operationId: its function name, or the generated id of a catch-all path
    parameters: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One documented operation of the trigger it decorates (the auth level comes from its auth decorator)."""

    summary: str
    response: str | None = None
    status: int = 200
    description: str = ""
    query: str | None = None
    body: str | None = None
    # Errors of this endpoint's own; those of auth, body, query, path ids and the database are added from them.
    errors: tuple[type[ApiError], ...] = ()
    # Other success statuses with the same body (sign-in answers 201 or 200).
    also: Mapping[int, str] = field(default_factory=dict)
    etag: bool = False
    location: bool = False
    if_match: bool = False
    links: Mapping[str, Link] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # Non-JSON success bodies: media type → schema.
    content: Mapping[str, Mapping[str, Any]] | None = None
    # A replacement for an error status's body and headers (health's 503 is a HealthReport).
    override: Mapping[int, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    # An error body other than the API's one error shape (the MCP Registry's own); None: the API's.
    error_model: str | None = None
    # For a catch-all route: the concrete path under the route prefix and the method this entry documents.
    path: str | None = None
    method: str | None = None
    path_parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # None: a protected endpoint uses the database, a public one not (503 documented accordingly).
    uses_database: bool | None = None
    # A registry read: ETag on success, If-None-Match answered with 304.
    conditional: bool = False

    def __call__(self, function: Function) -> Function:
        """Record this operation on the function (before those of decorators below it, as written)."""
        setattr(function, _OPERATIONS_ATTRIBUTE, (self, *operations_of(function)))
        return function


def operations_of(function: Callable[..., Any]) -> tuple[Operation, ...]:
    operations: tuple[Operation, ...] = getattr(function, _OPERATIONS_ATTRIBUTE, ())
    return operations


def record_auth(trigger: Callable[..., Any], auth: Auth) -> None:
    """Called by the auth decorators on the trigger they build."""
    setattr(trigger, _AUTH_ATTRIBUTE, auth)


def auth_of(function: Callable[..., Any]) -> Auth | None:
    """The level the function's auth decorator recorded; None when none was applied."""
    auth: Auth | None = getattr(function, _AUTH_ATTRIBUTE, None)
    return auth


def model_named(name: str) -> type[pydantic.BaseModel]:
    """The model class a declaration names (see the module docstring)."""
    for module in (models, verification_models):
        model = getattr(module, name, None)
        if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
            return model
    raise LookupError(f"{name!r} names no model in shared.models or shared.verification_models")
