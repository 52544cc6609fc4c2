"""Request and response models: the same pydantic models validate input and render output."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema

from shared.api_model import ApiModel
from shared.urls import MAX_URL_LENGTH, canonical_endpoint_url
from shared.verification_models import RegistrationVerification, Verification, VerificationStatus

RegistrationStatus = Literal["Pending", "Approved", "Rejected"]
Decision = Literal["Approved", "Rejected"]
AuditAction = Literal["Created", "Approved", "Rejected", "Updated", "Deleted", "Deprecated", "Undeprecated"]
Lifecycle = Literal["active", "deprecated"]

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The frontend asks for 1000 registrations at once (its Browse page and its "is this URL free?" check).
MAX_PAGE_SIZE = 1000
# PostgreSQL OFFSET is a bigint; anything near it is a client error, not a reason for a 500.
MAX_OFFSET = 2_147_483_647


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (JSON's "\ud800" decodes to
    # one): refuse both as invalid input instead of failing in the database or the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


NoNul = AfterValidator(_no_nul)

# Bidirectional formatting characters: they make served text read differently from what is stored (a name
# that displays as "weather" but sorts and matches as something else; the "Trojan Source" trick).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_single_line(value: str) -> str:
    # Names and titles: no control characters at all (they are shown on one line, and served to Copilot).
    if any(unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS for char in value):
        raise ValueError("must not contain control characters or bidirectional overrides")
    return value


def check_multi_line(value: str) -> str:
    # Descriptions may hold line breaks and tabs; no other control characters, no bidirectional overrides.
    if any((unicodedata.category(char) == "Cc" and char not in "\t\n\r") or char in BIDI_CONTROLS for char in value):
        raise ValueError("must not contain control characters (other than line breaks and tabs) or bidirectional overrides")
    return value


SingleLine = AfterValidator(check_single_line)
MultiLine = AfterValidator(check_multi_line)
# For the OpenAPI document: no C0/C1 controls or bidirectional overrides (descriptions allow \t, \n, \r).
SINGLE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"


@dataclass(frozen=True)
class Documented:
    """Adds JSON Schema keywords (for the OpenAPI document) that validators enforce in code: what a
    schema-valid value looks like, so that clients and the fuzzer know before the server tells them."""

    keywords_json: str  # JSON text: annotation metadata must be hashable

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        for name, value in json.loads(self.keywords_json).items():
            if value is None:
                schema.pop(name, None)
            else:
                schema[name] = value
        return schema


def documented(**keywords: Any) -> Documented:
    """JSON Schema keywords to add (a None value removes a keyword)."""
    return Documented(json.dumps(keywords, sort_keys=True))


# A pattern for the OpenAPI document: URLs that `canonical_endpoint_url` accepts and keeps within 2048
# characters (http(s), an ASCII host without user info, a port 1–65535, then only characters the WHATWG
# serialiser leaves as they are, no fragment). The code accepts more (IDN hosts, spaces in the query, …).
_PORT = r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
ENDPOINT_URL_PATTERN = (
    # Domain labels; the last one starts with a letter (a numeric last label makes WHATWG read an IPv4 address).
    r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?"
    + _PORT
    + r"([/?][A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?$"
)
# Text without NUL (PostgreSQL text cannot hold it; NoNul and the query parser refuse it).
NO_NUL = r"^[^\x00]*$"
# Not blank once trimmed, and without NUL (JSON Schema cannot say "after trimming").
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
# At least 3 characters once trimmed, and without NUL.
THREE_AFTER_TRIM = r"^[^\x00]*[^\s\x00][^\x00]+[^\s\x00][^\x00]*$"


def _endpoint_url(value: str) -> str:
    # Stored, compared, searched and served in its canonical form: one spelling per endpoint.
    return canonical_endpoint_url(value)


EndpointUrl = Annotated[
    str,
    AfterValidator(_endpoint_url),
    # One less than the limit: a URL without a path is stored with "/" (`https://host` → `https://host/`).
    documented(pattern=ENDPOINT_URL_PATTERN, minLength=8, maxLength=MAX_URL_LENGTH - 1),
]
EndpointName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=200),
    NoNul,
    SingleLine,
    documented(pattern=THREE_AFTER_TRIM, allOf=[{"pattern": SINGLE_LINE}]),
]
Description = Annotated[str, StringConstraints(max_length=1000), NoNul, MultiLine, documented(pattern=MULTI_LINE)]
Reason = Annotated[str, StringConstraints(max_length=1000), NoNul, documented(pattern=NO_NUL)]
OwnerContact = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320), NoNul, documented(pattern=NOT_BLANK)
]
ToolName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    NoNul,
    SingleLine,
    documented(pattern=NOT_BLANK, allOf=[{"pattern": SINGLE_LINE}]),
]
ToolDescription = Annotated[str, StringConstraints(max_length=500), NoNul, MultiLine, documented(pattern=MULTI_LINE)]
ToolVersion = Annotated[str, StringConstraints(max_length=50), NoNul, documented(pattern=NO_NUL)]
SearchTerm = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul, documented(pattern=NO_NUL)]
# MCP Registry server.json rules: reverse-DNS namespace, exactly one "/", 3–200 characters.
ServerName = Annotated[
    str, StringConstraints(min_length=3, max_length=200, pattern=r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$")
]
Transport = Literal["streamable-http", "sse"]


def _exact_version(value: str) -> str:
    # server.json rejects version ranges ("^1.2.3", "~1.2", ">=1", "1.x", "1.*"); "latest" is a path word.
    if value == "latest" or re.search(r"[\s^~<>=*|]", value) or re.search(r"(^|\.)[xX](\.|$)", value):
        raise ValueError("must be one exact version (no ranges, not 'latest')")
    return value


Version = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    NoNul,
    AfterValidator(_exact_version),
    # Documents the range characters and spaces; `_exact_version` also refuses "latest" and x-components.
    documented(pattern=r"^[^\s^~<>=*|\x00]+$"),
]


class Tool(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ToolName
    description: ToolDescription | None = None
    version: ToolVersion | None = None


class StoredTool(ApiModel):
    """A declared tool as responses show it: stored values were validated on the way in (as `Tool`), so reading
    them back runs no validators (they cost 28 µs of a registration's 30 µs on a page of 1000)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    version: str | None = None


def _tool_from_string(value: Any) -> Any:
    # The frontend may send a bare tool name.
    return {"name": value} if isinstance(value, str) else value


def tool_name_key(name: str) -> str:
    """What makes two tool names the same name: NFKC (`ﬁle` is `file`, composed and decomposed `é` are one)
    and case folding (`Tool` is `tool`). MCP clients show and call tools by name; look-alikes are confusing."""
    return unicodedata.normalize("NFKC", name).casefold()


def _unique_tool_names(tools: list[Tool]) -> list[Tool]:
    seen: dict[str, str] = {}
    for tool in tools:
        key = tool_name_key(tool.name)
        if key in seen:
            raise ValueError(f"tool names must be unique within a registration: {tool.name!r} is the same name as {seen[key]!r}")
        seen[key] = tool.name
    return tools


ToolList = Annotated[
    list[Annotated[Tool, BeforeValidator(_tool_from_string, json_schema_input_type=Tool | ToolName)]],
    Field(max_length=100),
    AfterValidator(_unique_tool_names),
]


class RegistrationCreate(ApiModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_url: EndpointUrl
    endpoint_name: EndpointName
    description: Description | None = None
    owner_contact: OwnerContact
    available_tools: ToolList
    server_name: ServerName | None = None
    version: Version = "1.0.0"
    transport: Transport = "streamable-http"


_NOT_NULL_ON_UPDATE = (
    "endpoint_url", "endpoint_name", "owner_contact", "available_tools", "server_name", "version", "transport",
)


def _update_schema(schema: dict[str, Any]) -> None:
    # Document what the validators enforce: only `description` may be null, and at least one field is sent.
    schema["minProperties"] = 1
    for name in _NOT_NULL_ON_UPDATE:
        field_schema = schema["properties"][name]
        branches = [branch for branch in field_schema.pop("anyOf", []) if branch != {"type": "null"}]
        if len(branches) == 1:
            field_schema.update(branches[0])
        elif branches:
            field_schema["anyOf"] = branches
        field_schema.pop("default", None)


class RegistrationUpdate(ApiModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_update_schema)

    endpoint_url: EndpointUrl | None = None
    endpoint_name: EndpointName | None = None
    description: Description | None = None
    owner_contact: OwnerContact | None = None
    available_tools: ToolList | None = None
    server_name: ServerName | None = None
    version: Version | None = None
    transport: Transport | None = None

    @field_validator(*_NOT_NULL_ON_UPDATE, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only `description` may be cleared; the others are required fields of a registration.
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _at_least_one_field(self) -> RegistrationUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one field is required")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


StatusMessage = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul, MultiLine, documented(pattern=NOT_BLANK)
]


class LifecycleChange(ApiModel):
    """Deprecate an approved registration ("use X instead"), or make it active again."""

    model_config = ConfigDict(extra="forbid")

    status: Lifecycle
    message: StatusMessage | None = None

    @model_validator(mode="after")
    def _message_only_when_deprecated(self) -> LifecycleChange:
        # The official registry: statusMessage is not allowed with `active`, and says why when deprecated.
        if self.status == "deprecated" and self.message is None:
            raise ValueError("a deprecation needs a message (what to use instead)")
        if self.status == "active" and self.message is not None:
            raise ValueError("an active server has no status message")
        return self


class StatusChange(ApiModel):
    model_config = ConfigDict(extra="forbid")

    status: Decision
    reason: Reason | None = None


class User(ApiModel):
    model_config = ConfigDict(frozen=True)

    user_id: UUID
    entra_id: str
    email: str
    display_name: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class Registration(ApiModel):
    model_config = ConfigDict(frozen=True)

    registration_id: UUID
    endpoint_url: str
    endpoint_name: str
    description: str | None
    owner_contact: str
    available_tools: list[StoredTool]
    server_name: str
    version: str
    transport: Transport
    status: RegistrationStatus
    submitter_id: UUID
    submitter_email: str
    submitter_display_name: str
    approver_id: UUID | None
    approver_email: str | None
    approver_display_name: str | None
    submitted_at: datetime
    approved_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # The MCP Registry lifecycle of an approved registration (served as the official `_meta` status).
    lifecycle: Lifecycle
    status_message: str | None
    status_changed_at: datetime | None
    # After available_tools: the declared and the probed tools are compared.
    verification: RegistrationVerification = Field(default_factory=lambda: Verification(status="unverified"))


class RegistrationList(ApiModel):
    total: int
    limit: int
    offset: int
    results: list[Registration]


class AuditEntry(ApiModel):
    model_config = ConfigDict(frozen=True)

    log_id: UUID
    registration_id: UUID
    user_id: UUID
    user_email: str
    user_display_name: str
    action: AuditAction
    previous_status: RegistrationStatus | None
    new_status: RegistrationStatus | None
    metadata: dict[str, Any]
    timestamp: datetime


class AuditLogList(ApiModel):
    total: int
    limit: int
    offset: int
    results: list[AuditEntry]


# ---------------------------------------------------------------- query strings


class _Query(ApiModel):
    # Unknown query parameters (cache busters and the like) are ignored, as browsers and proxies add them.
    model_config = ConfigDict(extra="ignore")


class RegistrationListQuery(_Query):
    status: RegistrationStatus | None = None
    submitter_id: UUID | None = None
    search: SearchTerm | None = None
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class MyRegistrationsQuery(_Query):
    status: RegistrationStatus | None = None
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class ByUrlQuery(_Query):
    # Canonicalised like a submitted URL, so every spelling finds the registration; not a URL → 400.
    endpoint_url: EndpointUrl


def _iso_8601(value: Any) -> Any:
    # pydantic would also read a number ("0.5") as a Unix timestamp; the contract says ISO 8601.
    if isinstance(value, str) and not re.match(r"\s*\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 date or date-time")
    return value


AuditTime = Annotated[
    datetime,
    BeforeValidator(_iso_8601),
    documented(type="string", format=None, anyOf=[{"format": "date-time"}, {"format": "date"}]),
]


class AuditLogQuery(_Query):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    registration_id: UUID | None = None
    user_id: UUID | None = None
    action: AuditAction | None = None
    from_: AuditTime | None = Field(default=None, alias="from")
    to: AuditTime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    @field_validator("to", mode="before")
    @classmethod
    def _date_to_end_of_day(cls, value: Any) -> Any:
        # Bounds are inclusive: `to=2025-11-11` (a date alone) includes that whole day.
        if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
            try:
                return datetime.combine(date.fromisoformat(value.strip()), time.max)
            except ValueError:
                raise ValueError("is not a valid date") from None
        return value

    @field_validator("from_", "to")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        # A date without an offset is read as UTC, the API's timezone.
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            # In UTC, as the database compares it; an instant outside years 1–9999 cannot be sent at all.
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None

    @field_validator("to")
    @classmethod
    def _not_before_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # A field validator (not a model one) so that the error names `to`; `from` is validated first.
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError("`to` must not be before `from`")
        return value


# ---------------------------------------------------------------- the MCP Registry (v0.1) query and cursor

REGISTRY_DEFAULT_LIMIT = 30
REGISTRY_MAX_LIMIT = 100
# A cursor this service issues is ~100–400 characters; anything longer is forged and never decoded.
MAX_CURSOR_LENGTH = 1024


def _registry_limit(value: Any) -> Any:
    # The official registry caps rather than refuses a large limit.
    if isinstance(value, str) and value.strip().lstrip("+").isdigit():
        return min(int(value), REGISTRY_MAX_LIMIT)
    return value


def _rfc3339(value: Any) -> Any:
    # RFC 3339 with an offset only (pydantic alone would also read "0.5" as a Unix timestamp).
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an RFC 3339 timestamp, e.g. 2025-11-11T10:00:00Z") from None
        if parsed.tzinfo is None:
            raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2025-11-11T10:00:00Z")
        try:
            # In UTC, as the database compares it; an instant outside years 1–9999 cannot be sent at all.
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None
    return value


RegistryTime = Annotated[datetime, BeforeValidator(_rfc3339), documented(format="date-time")]
RegistryVersion = Annotated[str, StringConstraints(min_length=1, max_length=255), NoNul, documented(pattern=NO_NUL)]


def _empty_means_absent(data: Any) -> Any:
    return {key: value for key, value in data.items() if value != ""} if isinstance(data, dict) else data


class McpServersQuery(_Query):
    """The registry's list parameters; an empty value counts as absent."""

    cursor: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Opaque: the `metadata.nextCursor` of the previous page (any other value is 400)",
    )
    limit: Annotated[int, BeforeValidator(_registry_limit)] = Field(
        default=REGISTRY_DEFAULT_LIMIT, ge=1, description="Page size (capped at 100)"
    )
    # `Literal[""]` documents that an empty value is accepted (it counts as absent, see _drop_empty).
    search: SearchTerm | Literal[""] | SkipJsonSchema[None] = Field(
        default=None, description="Substring of name or description"
    )
    updated_since: RegistryTime | Literal[""] | SkipJsonSchema[None] = Field(
        default=None, description="RFC 3339 timestamp"
    )
    version: RegistryVersion | Literal[""] | SkipJsonSchema[None] = Field(
        default=None, description="A version, or `latest`"
    )
    include_deleted: bool = Field(
        default=False,
        description="Also list removed servers (status `deleted`); always on when `updated_since` is given",
    )
    verification: VerificationStatus | Literal[""] | SkipJsonSchema[None] = Field(
        default=None, description="Only servers whose last probe had this outcome (`unverified`: never probed)"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        return _empty_means_absent(data)


class McpServerLookupQuery(_Query):
    """A server lookup's parameters."""

    include_deleted: bool = Field(default=False, description="Also find a removed server (status `deleted`)")


class AllowlistQuery(_Query):
    include_deprecated: bool = Field(default=True, description="`false` leaves deprecated servers out")


class McpCursor(ApiModel):
    """What a cursor carries: where the previous page ended and its filter (VS Code drops `search` after page
    1). Decoded from client input, so validated with the same bounds as the query itself."""

    model_config = ConfigDict(extra="forbid")

    after: Annotated[str, StringConstraints(max_length=200), NoNul]
    search: SearchTerm | None = None
    updated_since: RegistryTime | None = None
    version: RegistryVersion | None = None
    include_deleted: bool = False
    # A sync (updated_since) reads every page below the first page's horizon (see registry_sync_horizon()).
    horizon: RegistryTime | None = None
    verification: VerificationStatus | None = None


# ---------------------------------------------------------------- other responses


class HealthReport(ApiModel):
    status: Literal["healthy", "unhealthy"]
    database: Literal["connected", "disconnected"]
    timestamp: datetime


# ---------------------------------------------------------------- the MCP Registry (v0.1) format


class McpRemote(ApiModel):
    type: Transport
    url: str


class McpVerification(ApiModel):
    """The last probe of the server's endpoint (see the API's `verification`)."""

    status: str
    checkedAt: datetime | SkipJsonSchema[None] = None
    toolsFingerprint: str | SkipJsonSchema[None] = None


class McpRegistrationExtras(ApiModel):
    """What this registry adds to a server, under a reverse-DNS key in the server's `_meta`: only what
    clients need (the tools); the owner's contact only when MCP_REGISTRY_PUBLISH_OWNER_CONTACT is on."""

    tools: list[StoredTool]
    ownerContact: str | SkipJsonSchema[None] = None
    verification: McpVerification | SkipJsonSchema[None] = None


class McpServer(ApiModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(alias="$schema")
    name: str
    title: str
    description: str
    version: str
    remotes: list[McpRemote]
    meta: dict[str, McpRegistrationExtras] = Field(alias="_meta")


class McpOfficialStatus(ApiModel):
    status: Literal["active", "deprecated", "deleted"]
    statusMessage: str | SkipJsonSchema[None] = None
    statusChangedAt: datetime | SkipJsonSchema[None] = None
    publishedAt: datetime
    updatedAt: datetime
    isLatest: bool


class McpServerResponse(ApiModel):
    """One server in the MCP Registry v0.1 format."""

    model_config = ConfigDict(populate_by_name=True)

    server: McpServer
    meta: dict[str, McpOfficialStatus] = Field(alias="_meta")


class McpListMetadata(ApiModel):
    count: int
    nextCursor: str | SkipJsonSchema[None] = None


class McpServerList(ApiModel):
    servers: list[McpServerResponse]
    metadata: McpListMetadata


class McpRegistryError(ApiModel):
    """The MCP Registry's error body; the API's own keys ride along."""

    error: str
    detail: str
    error_code: str


class ServerJsonDocument(ApiModel):
    """A `server.json` in the official MCP registry format (schema 2025-12-11, vendored in shared/schemas/; the
    whole schema is checked in code). Here: one `remotes` entry; the tools under this registry's `_meta` key."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Reverse-DNS `namespace/name`, in this registry's namespace")
    description: str
    version: str
    title: str | SkipJsonSchema[None] = None
    remotes: list[dict[str, Any]] = Field(min_length=1, max_length=1)


class RegistrationPreview(RegistrationCreate):
    """What a `server.json` would register, as stored (the URL in its canonical form). Its own name in the
    OpenAPI document: a response, where RegistrationCreate is a request body."""


class ServerJsonCheck(ApiModel):
    """A `server.json` that passes: what publishing it would register."""

    valid: Literal[True]
    registration: RegistrationPreview


class AllowedMcpServer(ApiModel):
    serverUrl: str


class McpAllowlist(ApiModel):
    """Copilot's enterprise managed-settings.json `allowedMcpServers` (serverUrl entries)."""

    allowedMcpServers: list[AllowedMcpServer]

