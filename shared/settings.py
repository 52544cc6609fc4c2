"""Settings read from environment variables (Azure app settings, local.settings.json Values).

Settings are grouped by concern and read lazily on first use, so that indexing the function app
never fails on a missing value; a missing or invalid setting raises `SettingsError` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from ipaddress import ip_address
from typing import Literal, Self
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.schedule import DEFAULT_PROBE_SCHEDULE, Schedule


class SettingsError(RuntimeError):
    """A required setting is missing or a setting has an invalid value."""


def running_on_azure(env: Mapping[str, str] | None = None) -> bool:
    """True inside an App Service / Functions sandbox (the platform injects WEBSITE_INSTANCE_ID)."""
    env = os.environ if env is None else env
    return bool(env.get("WEBSITE_INSTANCE_ID"))


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"}:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class _EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        env = os.environ if env is None else env
        names = {field.alias or name for name, field in cls.model_fields.items()}
        # Surrounding blanks are never meant (a value pasted into the portal), and an empty app setting means
        # "not set", as it does for the Functions host. Flags then parse as pydantic's bool does
        # (true/false, 1/0, yes/no, on/off, any case).
        values = {name: env[name].strip() for name in names if env.get(name, "").strip() != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                name = ".".join(str(part) for part in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                if not name:
                    # A check across settings (its message names them), e.g. pool min above max.
                    problems.append(f"settings are invalid: {message}")
                elif error["type"] == "missing":
                    problems.append(f"required setting {name} is not set")
                else:
                    problems.append(f"setting {name} is invalid: {message}")
            raise SettingsError("; ".join(problems)) from None


class DatabaseSettings(_EnvModel):
    database_url: str = Field(alias="DATABASE_URL")
    database_auth: Literal["password", "entra"] = Field(default="password", alias="DATABASE_AUTH")
    db_ssl: Literal["disable", "require", "verify-full"] | None = Field(default=None, alias="DB_SSL")
    db_ssl_root_cert: str | None = Field(default=None, alias="DB_SSL_ROOT_CERT")
    pool_min_size: int = Field(default=0, ge=0, le=100, alias="DB_POOL_MIN_SIZE")
    pool_max_size: int = Field(default=4, ge=1, le=100, alias="DB_POOL_MAX_SIZE")
    acquire_timeout_s: float = Field(default=5.0, gt=0, le=120, alias="DB_ACQUIRE_TIMEOUT_S")
    command_timeout_s: float = Field(default=10.0, gt=0, le=600, alias="DB_COMMAND_TIMEOUT_S")
    statement_cache_size: int = Field(default=100, ge=0, alias="DB_STATEMENT_CACHE_SIZE")
    entra_token_scope: str = Field(
        default="https://ossrdbms-aad.database.windows.net/.default", alias="DATABASE_ENTRA_TOKEN_SCOPE"
    )
    managed_identity_client_id: str | None = Field(default=None, alias="AZURE_CLIENT_ID")

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"postgres", "postgresql"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        return self

    @property
    def ssl_mode(self) -> Literal["disable", "require", "verify-full"]:
        if self.db_ssl is not None:
            return self.db_ssl
        return "verify-full" if running_on_azure() else "disable"


class AuthSettings(_EnvModel):
    tenant_id: UUID = Field(alias="ENTRA_TENANT_ID")
    client_id: UUID = Field(alias="ENTRA_CLIENT_ID")
    admin_role: str = Field(default="Admin", min_length=1, alias="ENTRA_ADMIN_ROLE")
    admin_group_id: UUID | None = Field(default=None, alias="ENTRA_ADMIN_GROUP_ID")
    openid_config_url: str | None = Field(default=None, alias="ENTRA_OPENID_CONFIG_URL")
    leeway_s: int = Field(default=60, ge=0, le=300, alias="AUTH_LEEWAY_S")
    easyauth_required: bool | None = Field(default=None, alias="EASYAUTH_REQUIRED")
    website_auth_enabled: bool | None = Field(default=None, alias="WEBSITE_AUTH_ENABLED")
    jwks_refresh_s: int = Field(default=3600, ge=60, alias="JWKS_REFRESH_S")
    jwks_unknown_kid_cooldown_s: float = Field(default=300.0, ge=0, alias="JWKS_UNKNOWN_KID_COOLDOWN_S")
    jwks_fetch_timeout_s: float = Field(default=5.0, gt=0, le=30, alias="JWKS_FETCH_TIMEOUT_S")
    max_token_bytes: int = Field(default=16384, ge=1024, le=262144, alias="AUTH_MAX_TOKEN_BYTES")
    caller_cache_size: int = Field(default=10000, ge=0, alias="AUTH_CALLER_CACHE_SIZE")

    @field_validator("openid_config_url")
    @classmethod
    def _only_loopback_override(cls, value: str | None) -> str | None:
        # Pointing token validation anywhere but the tenant is only allowed for a local issuer.
        if value is not None and not is_loopback_url(value):
            raise ValueError("only a loopback http(s) URL may replace the tenant's OpenID configuration")
        return value

    @property
    def openid_configuration_url(self) -> str:
        if self.openid_config_url:
            return self.openid_config_url
        return f"https://login.microsoftonline.com/{self.tenant_id}/v2.0/.well-known/openid-configuration"

    @property
    def issuers(self) -> tuple[str, str]:
        return (
            f"https://sts.windows.net/{self.tenant_id}/",
            f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
        )

    @property
    def audiences(self) -> tuple[str, str]:
        return (str(self.client_id), f"api://{self.client_id}")

    @property
    def easyauth_check_enabled(self) -> bool:
        if self.easyauth_required is not None:
            return self.easyauth_required
        return bool(self.website_auth_enabled)


class AppSettings(_EnvModel):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", alias="LOG_LEVEL"
    )
    appinsights_connection_string: str | None = Field(
        default=None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    worker_configures_telemetry: bool | None = Field(
        default=None, alias="PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class RegistrySettings(_EnvModel):
    """The anonymous MCP Registry (v0.1) API that Copilot clients read."""

    enabled: bool = Field(default=True, alias="MCP_REGISTRY_ENABLED")
    # Reverse-DNS namespace of derived server names: <namespace>/<slug of the endpoint name>.
    server_namespace: str = Field(
        default="com.example.mcp", min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9.-]+$",
        alias="MCP_SERVER_NAMESPACE",
    )
    # Where an explicit server name may be: MCP_SERVER_NAMESPACE and these comma-separated others, each with its
    # sub-namespaces (`com.contoso.mcp.team`). Copilot's registry policy matches servers
    # by name, so nobody may register under a name the organisation does not own (`io.github.github/…`).
    extra_namespaces: tuple[str, ...] = Field(default=(), alias="MCP_SERVER_NAMESPACES")
    # The anonymous registry publishes only what clients need; owners' contacts are personal data.
    publish_owner_contact: bool = Field(default=False, alias="MCP_REGISTRY_PUBLISH_OWNER_CONTACT")

    @field_validator("extra_namespaces", mode="before")
    @classmethod
    def _namespace_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("extra_namespaces")
    @classmethod
    def _valid_namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for namespace in value:
            if not re.fullmatch(r"[a-zA-Z0-9.-]{1,100}", namespace):
                raise ValueError(f"{namespace!r} is not a reverse-DNS namespace")
        return value

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.server_namespace, *self.extra_namespaces)))

    def in_namespace(self, server_name: str) -> bool:
        """Whether `server_name`'s namespace is one of ours or below one (compared ignoring case)."""
        namespace = server_name.split("/", 1)[0].lower()
        return any(namespace == ours.lower() or namespace.startswith(ours.lower() + ".") for ours in self.namespaces)


class RegistrationSettings(_EnvModel):
    """Reviewing and deciding registrations."""

    # An approval without If-Match (the existing frontend sends none) is refused while the registration was
    # edited by someone else less than this long ago: the admin may be approving a page loaded before the edit.
    approval_review_window_s: float = Field(default=900, ge=0, le=86_400, alias="APPROVAL_REVIEW_WINDOW_S")


class ProbeSettings(_EnvModel):
    """Probing registered endpoints over MCP (shared/probe.py, shared/verification.py)."""

    # Loopback is refused unless a local run or the tests say otherwise; private ranges (internal MCP servers,
    # the common case) are allowed unless refused. Link-local, unspecified and multicast are always refused.
    allow_loopback: bool = Field(default=False, alias="PROBE_ALLOW_LOOPBACK")
    allow_private: bool = Field(default=True, alias="PROBE_ALLOW_PRIVATE")
    schedule: str = Field(default=DEFAULT_PROBE_SCHEDULE, alias="PROBE_SCHEDULE")
    batch_size: int = Field(default=50, ge=1, le=1000, alias="PROBE_BATCH_SIZE")
    concurrency: int = Field(default=4, ge=1, le=50, alias="PROBE_CONCURRENCY")
    timeout_s: float = Field(default=20.0, ge=1, le=120, alias="PROBE_TIMEOUT_S")
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60, alias="PROBE_CONNECT_TIMEOUT_S")
    drift_action: Literal["flag", "suspend"] = Field(default="flag", alias="PROBE_DRIFT_ACTION")
    max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, alias="PROBE_MAX_RESPONSE_BYTES")
    max_tools: int = Field(default=1000, ge=1, le=10000, alias="PROBE_MAX_TOOLS")

    @field_validator("drift_action", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        Schedule.parse(value)
        return value


@lru_cache(maxsize=1)
def get_database_settings() -> DatabaseSettings:
    return DatabaseSettings.from_env()


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    return AuthSettings.from_env()


@lru_cache(maxsize=1)
def get_app_settings() -> AppSettings:
    return AppSettings.from_env()


def clear_settings_cache() -> None:
    """Forget settings read so far (the local host and tests change the environment)."""
    get_database_settings.cache_clear()
    get_auth_settings.cache_clear()
    get_app_settings.cache_clear()
    get_registry_settings.cache_clear()
    get_registration_settings.cache_clear()
    get_probe_settings.cache_clear()


@lru_cache(maxsize=1)
def get_registry_settings() -> RegistrySettings:
    return RegistrySettings.from_env()


@lru_cache(maxsize=1)
def get_registration_settings() -> RegistrationSettings:
    return RegistrationSettings.from_env()


@lru_cache(maxsize=1)
def get_probe_settings() -> ProbeSettings:
    return ProbeSettings.from_env()


def setting_names() -> set[str]:
    """Every environment variable the app reads."""
    names: set[str] = set()
    for model in (DatabaseSettings, AuthSettings, AppSettings, RegistrySettings, RegistrationSettings, ProbeSettings):
        names.update(field.alias or name for name, field in model.model_fields.items())
    return names
