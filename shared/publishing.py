"""Publishing a `server.json` (the official MCP registry's format) as a registration: validate and publish.

A team that already keeps a `server.json` for the public registry sends the same file here. It is checked
against the vendored official schema (shared/schemas/) and this registry's rules, then turned into the same
`RegistrationCreate` that `POST /api/registrations` takes — same URL rules, duplicate checks and audit.
jsonschema is imported on first use, so the app's cold start does not pay for it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import azure.functions as func
from pydantic import ValidationError

from shared import db
from shared.errors import DuplicateEndpoint, DuplicateServerName, InvalidStateTransition, ValidationFailed
from shared.http import field_errors_of, json_response
from shared.models import RegistrationCreate, RegistrationPreview, RegistrationUpdate, ServerJsonCheck
from shared.registrations import create_registration, update_registration
from shared.settings import get_registry_settings
from shared.tokens import Caller

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "server.schema.2025-12-11.json"
SELECT_BY_NAME_SQL = """
SELECT registration_id, status, submitter_id, server_name FROM registrations WHERE lower(server_name) = lower($1)
"""


@lru_cache(maxsize=1)
def _schema() -> Draft7Validator:
    from jsonschema import Draft7Validator

    return Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _schema_errors(document: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in sorted(_schema().iter_errors(document), key=lambda error: [str(part) for part in error.absolute_path]):
        field = ".".join(str(part) for part in error.absolute_path) or "body"
        errors.setdefault(field, error.message[:300])
    return errors


def _registry_rule_errors(document: dict[str, Any]) -> dict[str, str]:
    settings = get_registry_settings()
    errors: dict[str, str] = {}
    if not settings.in_namespace(document["name"]):
        errors["name"] = f"must be in this registry's namespace ({', '.join(settings.namespaces)})"
    if document.get("packages"):
        errors["packages"] = "packages are not supported yet: this registry lists remote servers (one `remotes` entry)"
    remotes = document.get("remotes") or []
    if len(remotes) != 1:
        errors["remotes"] = f"exactly one remote is required (got {len(remotes)})"
        return errors
    remote = remotes[0]
    if remote.get("variables") or "{" in remote["url"]:
        errors["remotes.0.url"] = "URL variables are not supported: give the endpoint's full URL"
    if remote.get("headers"):
        errors["remotes.0.headers"] = "remote headers are not supported yet"
    return errors


def _extras(document: dict[str, Any]) -> dict[str, Any]:
    """This registry's own `_meta` entry (the tools, optionally the owner's contact), if the file has one."""
    extras = (document.get("_meta") or {}).get(f"{get_registry_settings().server_namespace}/registration")
    return extras if isinstance(extras, dict) else {}


def registration_of(document: dict[str, Any], caller: Caller) -> RegistrationCreate:
    """The registration a `server.json` stands for; ValidationFailed names what is wrong, in the file's terms."""
    errors = _schema_errors(document)
    if errors:
        raise ValidationFailed("server.json does not match the official schema (2025-12-11)", field_errors=errors)
    errors = _registry_rule_errors(document)
    if errors:
        raise ValidationFailed("server.json breaks a rule of this registry", field_errors=errors)
    remote, extras = document["remotes"][0], _extras(document)
    meta_key = f"_meta.{get_registry_settings().server_namespace}/registration"
    fields = {
        "endpoint_url": ("remotes.0.url", remote["url"]),
        "transport": ("remotes.0.type", remote["type"]),
        "endpoint_name": ("title", document.get("title") or document["name"].split("/", 1)[1]),
        "description": ("description", document["description"]),
        "owner_contact": (f"{meta_key}.ownerContact", extras.get("ownerContact") or caller.email or caller.name),
        "available_tools": (f"{meta_key}.tools", extras.get("tools", [])),
        "server_name": ("name", document["name"]),
        "version": ("version", document["version"]),
    }
    try:
        return RegistrationCreate.model_validate({name: value for name, (_, value) in fields.items()})
    except ValidationError as exc:
        raise ValidationFailed(
            "server.json breaks a rule of this registry",
            field_errors={_in_file_terms(name, fields): message for name, message in field_errors_of(exc).items()},
        ) from None


def _in_file_terms(field: str, fields: dict[str, tuple[str, Any]]) -> str:
    head, _, rest = field.partition(".")
    return ".".join(part for part in (fields[head][0] if head in fields else head, rest) if part)


def validate_response(document: dict[str, Any], caller: Caller) -> func.HttpResponse:
    """What publishing this file would register, or 422 saying what is wrong; writes nothing."""
    preview = RegistrationPreview.model_validate(registration_of(document, caller).model_dump())
    return json_response(ServerJsonCheck(valid=True, registration=preview))


async def publish(document: dict[str, Any], caller: Caller, base_url: str) -> func.HttpResponse:
    """A new Pending registration owned by the caller (201), or the caller's Pending one of that name updated
    (200). An approved or rejected name is not changed by publishing (409, saying how to proceed)."""
    body = registration_of(document, caller)
    assert body.server_name is not None
    async with db.connection() as conn:
        existing = await conn.fetchrow(SELECT_BY_NAME_SQL, body.server_name)
    try:
        if existing is None:
            return await create_registration(body, caller, base_url=base_url)
        if existing["submitter_id"] != caller.user_id:
            raise DuplicateServerName(
                "This server name is registered by someone else",
                field_errors={"name": "already taken"},
                extra={"registration_id": str(existing["registration_id"])},
            )
        if existing["status"] != "Pending":
            raise InvalidStateTransition(_how_to_proceed(existing["server_name"], existing["status"]))
        update = RegistrationUpdate.model_validate(body.model_dump(exclude={"server_name"}))
        return await update_registration(UUID(str(existing["registration_id"])), update, caller, if_match=None)
    except DuplicateEndpoint as exc:
        raise DuplicateEndpoint(exc.detail, field_errors={"remotes.0.url": "already registered"}, extra=exc.extra) from None


def _how_to_proceed(server_name: str, status: str) -> str:
    if status == "Approved":
        return (
            f"{server_name} is Approved: publishing does not change what clients were approved to use. Ask a registry "
            "admin to review the new version (an admin can edit the approved registration), or publish it under a "
            "new name."
        )
    return f"{server_name} was {status}: ask a registry admin to delete it before publishing it again."
