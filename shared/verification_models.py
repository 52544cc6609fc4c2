"""The verification of a registration (what probing its endpoint over MCP found) as the API shows it, and the
body of a tool-set approval. Rendered from a `registration_verifications` row (sql/0012)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator

from shared.api_model import ApiModel

VerificationStatus = Literal[
    "unverified", "verified", "auth_required", "not_mcp", "unreachable", "timeout", "refused", "drifted"
]
VERIFICATION_STATUSES: tuple[str, ...] = get_args(VerificationStatus)
Fingerprint = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$", description="`sha256:` and 64 hex digits")]


class VerifiedTool(ApiModel):
    """A tool as the server listed it, with the fingerprint of its name, description, inputSchema and annotations."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str | None = None
    description: str | None = None
    inputSchema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    fingerprint: Fingerprint


class ToolDrift(ApiModel):
    """Tool names added, removed and changed (description, input schema or annotations) since the approved set."""

    model_config = ConfigDict(frozen=True)

    added: list[str]
    removed: list[str]
    changed: list[str]


class DeclaredToolDifference(ApiModel):
    """Where the probed tools and the registration's declared `available_tools` disagree (by name)."""

    model_config = ConfigDict(frozen=True)

    undeclared: list[str] = Field(description="Listed by the server, not declared")
    missing: list[str] = Field(description="Declared, not listed by the server")


class Verification(ApiModel):
    model_config = ConfigDict(frozen=True)

    status: VerificationStatus = Field(
        description=(
            "`verified`: speaks MCP, tools listed; `auth_required`: answered 401 with an MCP authorization "
            "challenge (tools unknown); `not_mcp`: answered, but not MCP; `unreachable`: no connection; "
            "`timeout`: no complete answer in time; `refused`: the probe refused (address not allowed, response "
            "or tool list over its cap); `drifted`: the tools differ from the approved set; `unverified`: never probed"
        )
    )
    checked_at: datetime | None = None
    detail: str | None = None
    protocol_version: str | None = None
    server_info: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None
    tools: list[VerifiedTool] | None = None
    tools_fingerprint: Fingerprint | None = None
    resource_metadata: str | None = Field(default=None, description="`auth_required`: the resource metadata URL")
    drift: ToolDrift | None = None
    approved_tools_fingerprint: Fingerprint | None = None
    tools_approved_at: datetime | None = None
    approved_unverified: bool = Field(default=False, description="The registration was approved before any probe verified it")
    suspended: bool = Field(default=False, description="Drifted under PROBE_DRIFT_ACTION=suspend: not served by /v0.1")
    declared_difference: DeclaredToolDifference | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        # A registration without a verification row has never been probed.
        return {"status": "unverified"} if value is None else value


def with_declared_difference(verification: Verification, declared: set[str]) -> Verification:
    """The verification with where the probed tools and these declared tool names disagree."""
    if verification.tools is None:
        return verification
    probed = {tool.name for tool in verification.tools}
    if probed == declared:
        return verification
    difference = DeclaredToolDifference(undeclared=sorted(probed - declared), missing=sorted(declared - probed))
    return verification.model_copy(update={"declared_difference": difference})


def _with_declared_difference(value: Any, info: ValidationInfo) -> Any:
    # In a Registration, `available_tools` is validated before this field.
    declared = {tool.name for tool in info.data.get("available_tools", [])}
    return with_declared_difference(Verification.model_validate(value), declared)


RegistrationVerification = Annotated[Verification, BeforeValidator(_with_declared_difference)]


class ToolSetApproval(ApiModel):
    """Approve the tool set the last probe found: send the `tools_fingerprint` you reviewed."""

    model_config = ConfigDict(extra="forbid")

    tools_fingerprint: Fingerprint
