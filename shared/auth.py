"""The auth decorators every protected trigger uses: `@authenticated` and `@admin_only`.

Each builds the trigger (shared.http.endpoint) around a handler that takes the request and a verified
`Caller` (shared.tokens), and records its level for the API description. Admin-only checks the role only
after the token was verified, so an unsigned caller gets 401, a signed-in non-admin 403.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import Forbidden
from shared.http import Trigger, endpoint
from shared.lazy_imports import lazy_module
from shared.logs import bind_request_fields

if TYPE_CHECKING:
    from shared import tokens
    from shared.tokens import Caller
else:
    # Token checks load settings models and the user store: on the first request, not when indexing.
    tokens = lazy_module("shared.tokens")

AuthenticatedHandler = Callable[[func.HttpRequest, "Caller"], Awaitable[func.HttpResponse]]


def _protected(handler: AuthenticatedHandler, *, admin: bool) -> Trigger:
    @functools.wraps(handler)
    async def handle(req: func.HttpRequest) -> func.HttpResponse:
        caller = await tokens.authenticate(req)
        bind_request_fields(user_oid=caller.oid)
        if admin and not caller.is_admin:
            raise Forbidden("This action requires the admin role")
        return await handler(req, caller)

    return endpoint(handle, "admin" if admin else "user")


def authenticated(handler: AuthenticatedHandler) -> Trigger:
    """Any signed-in user of the tenant."""
    return _protected(handler, admin=False)


def admin_only(handler: AuthenticatedHandler) -> Trigger:
    """Admins only; others get 403, but only after their token was verified."""
    return _protected(handler, admin=True)
