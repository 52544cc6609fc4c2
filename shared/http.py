"""Request parsing and response rendering shared by every trigger, and the one place errors become HTTP.

Every trigger is wrapped by `endpoint` (directly, or through the auth decorators), which gives it the
worker-visible signature `(req, context)`, maps errors to the contract's shape, and writes one access
log line per request.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import azure.functions as func
import pydantic
from pydantic_core import ErrorDetails, ValidationError

from shared import telemetry
from shared.db_errors import as_api_error
from shared.errors import (
    ApiError,
    InternalError,
    InvalidJson,
    InvalidQuery,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.logs import bind_request_fields, log_access, request_fields
from shared.operations import Auth, record_auth

logger = logging.getLogger("mcp_registry.http")
access_logger = logging.getLogger("mcp_registry.access")

MAX_BODY_BYTES = 64 * 1024
EXPOSED_HEADERS = "ETag, Location, Retry-After, WWW-Authenticate"
JSON_MEDIA_TYPE = "application/json"

# `pydantic.BaseModel` is read when used: its first read loads pydantic's model machinery (shared/lazy_imports.py).
ModelT = TypeVar("ModelT", bound="pydantic.BaseModel")
Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]
Trigger = Callable[..., Awaitable[func.HttpResponse]]


# ---------------------------------------------------------------- responses


def _json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(
    payload: pydantic.BaseModel | Mapping[str, Any] | list[Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    exclude_none: bool = False,
) -> func.HttpResponse:
    if isinstance(payload, pydantic.BaseModel):
        body = payload.model_dump_json(by_alias=True, exclude_none=exclude_none)
    else:
        body = json.dumps(payload, default=_json_default, separators=(",", ":"))
    return func.HttpResponse(
        body=body, status_code=status, headers=dict(headers or {}), mimetype=JSON_MEDIA_TYPE, charset="utf-8"
    )


def no_content(headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(status_code=204, headers=dict(headers or {}))


def error_response(error: ApiError) -> func.HttpResponse:
    return json_response(error.body(), status=error.status, headers=error.headers)


# ---------------------------------------------------------------- request parsing


def _field_name(location: Iterable[int | str]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query")]
    return ".".join(parts) or "body"


def _field_message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "Unknown field"
    if error["type"] == "missing":
        return "Field required"
    message = error["msg"]
    # pydantic prefixes custom validator messages with "Value error, "
    return message.removeprefix("Value error, ")


def field_errors_of(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        errors.setdefault(_field_name(error["loc"]), _field_message(error))
    return errors


def _reject_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_object(req: func.HttpRequest) -> dict[str, Any]:
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    content_type = req.headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type and media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        raise UnsupportedMediaType()
    charset = params.strip().lower().removeprefix("charset=").strip('"') if "charset=" in params.lower() else ""
    if charset and charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaType("Request body must be UTF-8 encoded JSON")
    if not body.strip():
        raise InvalidJson("Request body is empty; a JSON object is required")
    if not media_type:
        raise UnsupportedMediaType()
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_json_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidJson("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidJson("Request body must be a JSON object")
    return data


def parse_json_body(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    data = read_json_object(req)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors=field_errors_of(exc)) from None


def parse_query(req: func.HttpRequest, model: type[ModelT]) -> ModelT:
    params = dict(req.params)
    for name, value in params.items():
        if "\x00" in value or "\x00" in name:
            raise InvalidQuery("Query parameters must not contain NUL characters", field_errors={name: "NUL"})
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        errors = field_errors_of(exc)
        raise InvalidQuery(
            "Invalid query parameter: " + ", ".join(sorted(errors)), field_errors=errors
        ) from None


def request_path_url(req: func.HttpRequest) -> str:
    """The request URL without its query string (a base for Location headers)."""
    return (req.url or "").split("?", 1)[0].rstrip("/")


def entity_tags(header: str | None) -> frozenset[str] | None:
    """The tags an If-Match / If-None-Match list names, compared weakly (`W/"1"` is `"1"`, RFC 9110 §13.1);
    None when the header is absent or `*` (any current representation)."""
    if header is None:
        return None
    tags = frozenset(tag.strip().removeprefix("W/") for tag in header.split(","))
    return None if "*" in tags else tags


def registrations_url(req: func.HttpRequest) -> str:
    """`…/api/registrations` on the host this request came to (the base of a created registration's Location)."""
    return request_path_url(req).rsplit("/v0.1/", 1)[0] + "/registrations"


def route_uuid(req: func.HttpRequest, name: str) -> uuid.UUID:
    """A GUID route value; anything else is a resource that cannot exist (404)."""
    try:
        return uuid.UUID(req.route_params.get(name, ""))
    except ValueError:
        raise NotFound() from None


# ---------------------------------------------------------------- the endpoint wrapper


def _invocation_id(context: func.Context | None) -> str:
    invocation_id = getattr(context, "invocation_id", None)
    return str(invocation_id) if invocation_id else str(uuid.uuid4())


def _traceparent(req: func.HttpRequest, context: func.Context | None) -> str:
    """The invocation's W3C traceparent: the worker's (the host's span on Azure), else the request's."""
    trace_context = getattr(context, "trace_context", None)
    return str(getattr(trace_context, "trace_parent", "") or req.headers.get("traceparent", ""))


def _trace_id(traceparent: str) -> str | None:
    parts = traceparent.strip().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1].lower()
    return None


def _route_of(req: func.HttpRequest) -> str:
    url = req.url or ""
    path = url.split("://", 1)[-1]
    path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    return path.split("?", 1)[0]


def _response_for(exc: BaseException, invocation_id: str) -> func.HttpResponse:
    error = as_api_error(exc)
    if error is None:
        # The one record of an unexpected error: its stack, under the invocation id the 500 body repeats.
        logger.exception("unhandled error: %s", type(exc).__name__)
        telemetry.record_exception(exc)
        error = InternalError(extra={"invocation_id": invocation_id})
    elif error.status >= 500:
        # Expected outages (database down, pool exhausted): one line with the cause, no stack.
        cause = exc.__cause__ if isinstance(exc, ApiError) and exc.__cause__ is not None else exc
        reason = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        logger.warning("request failed: %s (%s)", error.error_code, reason)
    bind_request_fields(error_code=error.error_code)
    return error_response(error)


def _expose_headers(response: func.HttpResponse) -> None:
    """Access-Control-Expose-Headers, unless the handler set its own. The response's headers are werkzeug's,
    whose `in` answers "no" by raising and catching a werkzeug HTTP exception: sampled over HTTP that miss was
    ~5 % of a get_by_id request's time in our own code; scanning the few names is not."""
    headers = response.headers
    if not any(name.lower() == "access-control-expose-headers" for name, _ in headers):
        headers.add("Access-Control-Expose-Headers", EXPOSED_HEADERS)


def _worker_signature() -> inspect.Signature:
    # The worker binds parameters by name: `req` is the trigger, `context` asks for the invocation context.
    return inspect.Signature(
        [
            inspect.Parameter("req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=func.HttpRequest),
            inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=func.Context),
        ],
        return_annotation=func.HttpResponse,
    )


def endpoint(handler: Handler, auth: Auth) -> Trigger:
    """Wrap a request handler as a trigger: error mapping, request log fields and the access line. `auth` is
    the level the calling auth decorator enforces, recorded on the trigger for the API description."""

    @functools.wraps(handler)
    async def trigger(req: func.HttpRequest, context: func.Context | None = None) -> func.HttpResponse:
        started = time.perf_counter()
        invocation_id = _invocation_id(context)
        function_name = getattr(context, "function_name", None) or handler.__name__
        route = _route_of(req)
        fields: dict[str, Any] = {
            "invocation_id": invocation_id,
            "function": function_name,
            "method": req.method,
            "route": route,
        }
        trace_id = telemetry.current_trace_id() or _trace_id(_traceparent(req, context))
        if trace_id:
            fields["trace_id"] = trace_id
        token = request_fields.set(fields)
        try:
            try:
                response = await handler(req)
            except Exception as exc:
                response = _response_for(exc, invocation_id)
            # Cross-origin callers (the SPA) may read these; CORS hides every other response header.
            _expose_headers(response)
            log_access(access_logger, response.status_code, round((time.perf_counter() - started) * 1000, 2))
            return response
        finally:
            request_fields.reset(token)

    # What the worker reads: inspect.signature and typing.get_type_hints, which would otherwise evaluate the
    # handler's annotations (a `Caller` function_app imports for the type checker only) in its module.
    signature = _worker_signature()
    trigger.__signature__ = signature  # type: ignore[attr-defined]
    trigger.__annotations__ = {
        **{name: parameter.annotation for name, parameter in signature.parameters.items()},
        "return": signature.return_annotation,
    }
    record_auth(trigger, auth)
    return trigger


def public(handler: Handler) -> Trigger:
    """An anonymous endpoint."""
    return endpoint(handler, "public")
