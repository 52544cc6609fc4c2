"""Static checks of the infrastructure templates (issues 9 and 15).

The Bicep CLI and Azure are not reachable from CI, so these tests read `infra/*.bicep` with pycep-parser (the
parser checkov uses) through tests/support/bicep.py, follow module parameters from `main.bicep` into the modules
(and module outputs back), and assert the facts the issues list using the *default* deployment: the templates'
defaults plus what `main.parameters.json` gives (literals and azd `${VAR=default}` defaults). They also read
`host.json`, `local.settings.json.example`, `azure.yaml`, `sql/*.sql`, `function_app.py`, the post-provision hook,
the README and the app's settings (`shared.settings.setting_names()`). No network, no database.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pycep.models import BicepElement

import function_app
from infra.hooks import database_setup
from shared.app_index import http_routes
from shared.operations import auth_of
from shared.routes import RouteTemplate, read_host_json, route_prefix
from shared.settings import setting_names
from tests.support.bicep import (
    INFRA,
    MAIN,
    ROOT,
    Decl,
    bicep_files,
    load,
    main_parameter_overrides,
    module_call,
    resolve,
    resolve_in_loop,
    text,
)

FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
POSTGRES = INFRA / "modules" / "postgres.bicep"
STORAGE = INFRA / "modules" / "storage.bicep"
NETWORK = INFRA / "modules" / "network.bicep"
MONITORING = INFRA / "modules" / "monitoring.bicep"

# Settings Flex Consumption rejects or ignores (they come from functionAppConfig instead).
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
}
# siteConfig properties Flex does not support (runtime/scale live in functionAppConfig).
FLEX_FORBIDDEN_SITE_CONFIG = {
    "alwaysOn",
    "linuxFxVersion",
    "use32BitWorkerProcess",
    "functionAppScaleLimit",
    "numberOfWorkers",
    "javaVersion",
    "netFrameworkVersion",
    "pythonVersion",
}

# Settings the app reads that the Bicep deliberately does not set. One reason per name.
OPTIONAL_SETTINGS = {
    # Custom CA bundle for verify-full; the platform's system trust store has the Azure roots.
    "DB_SSL_ROOT_CERT": "system trust store is used on Azure",
    # Pool waits: the app's defaults (seconds) are the intended production values.
    "DB_ACQUIRE_TIMEOUT_S": "app default",
    "DB_COMMAND_TIMEOUT_S": "app default",
    # Token scope for Azure Database for PostgreSQL; the app default is the public-cloud scope.
    "DATABASE_ENTRA_TOKEN_SCOPE": "app default (public cloud)",
    # Loopback-only override for local runs; must never be set on Azure.
    "ENTRA_OPENID_CONFIG_URL": "local runs only",
    # Token-validation tuning: app defaults.
    "AUTH_LEEWAY_S": "app default",
    "JWKS_REFRESH_S": "app default",
    "JWKS_UNKNOWN_KID_COOLDOWN_S": "app default",
    "JWKS_FETCH_TIMEOUT_S": "app default",
    "AUTH_MAX_TOKEN_BYTES": "app default",
    "AUTH_CALLER_CACHE_SIZE": "app default",
    # Left unset so the EasyAuth second check follows WEBSITE_AUTH_ENABLED (platform-injected).
    "EASYAUTH_REQUIRED": "follows WEBSITE_AUTH_ENABLED",
    # Injected by App Service when authsettingsV2 is enabled; must not be set by hand.
    "WEBSITE_AUTH_ENABLED": "platform-injected",
    # App default INFO; change per deployment in the portal/CLI when debugging.
    "LOG_LEVEL": "app default",
    # Owners' contacts are personal data: the anonymous registry leaves them out unless an organisation opts in.
    "MCP_REGISTRY_PUBLISH_OWNER_CONTACT": "app default (off)",
    # Only MCP_SERVER_NAMESPACE (set from mcpServerNamespace) unless an organisation owns more namespaces.
    "MCP_SERVER_NAMESPACES": "app default (MCP_SERVER_NAMESPACE alone)",
    "APPROVAL_REVIEW_WINDOW_S": "app default",
    # Probing endpoints over MCP (README "Verified servers"): app defaults are the production values; loopback is
    # for local runs only and must never be allowed on Azure.
    "PROBE_ALLOW_LOOPBACK": "local runs only",
    "PROBE_ALLOW_PRIVATE": "app default (allowed)",
    "PROBE_SCHEDULE": "app default (every 6 hours)",
    "PROBE_BATCH_SIZE": "app default",
    "PROBE_CONCURRENCY": "app default",
    "PROBE_TIMEOUT_S": "app default",
    "PROBE_CONNECT_TIMEOUT_S": "app default",
    "PROBE_DRIFT_ACTION": "app default (flag)",
    "PROBE_MAX_RESPONSE_BYTES": "app default",
    "PROBE_MAX_TOOLS": "app default",
}
# Settings the Bicep sets for someone other than shared.settings. One reason per name.
SET_FOR_OTHERS = {
    # The Functions host: identity-based AzureWebJobsStorage.
    "AzureWebJobsStorage__credential": "host",
    "AzureWebJobsStorage__clientId": "host",
    "AzureWebJobsStorage__blobServiceUri": "host",
    # The host and the worker's Azure Monitor exporter: Entra-authenticated ingestion.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "host + worker",
}

# max_connections by SKU (learn.microsoft.com/azure/postgresql/flexible-server/concepts-limits); 15 are reserved.
MAX_CONNECTIONS = {
    "Standard_B1ms": 50,
    "Standard_B2s": 429,
    "Standard_B2ms": 859,
    "Standard_D2s_v3": 859,
    "Standard_D2ds_v4": 859,
    "Standard_D2ds_v5": 859,
    "Standard_D4s_v3": 1718,
    "Standard_D4ds_v4": 1718,
    "Standard_D4ds_v5": 1718,
}
RESERVED_CONNECTIONS = 15

# PgBouncer's max_client_conn default (concepts-pgbouncer): the client side of the budget behind it.
PGBOUNCER_MAX_CLIENT_CONN = 5000

# PostgreSQL major versions each Microsoft.DBforPostgreSQL API version accepts (ServerVersion enum in
# Azure/bicep-types-az generated/postgresql/microsoft.dbforpostgresql/<version>/types.md).
POSTGRES_VERSIONS_BY_API = {
    "2024-08-01": {"11", "12", "13", "14", "15", "16"},
    "2025-08-01": {"11", "12", "13", "14", "15", "16", "17", "18"},
}

STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor (Owner already covers the host)
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # Storage Account Contributor (would expose keys)
}


# --------------------------------------------------------------------------------------------------
# Shortcuts
# --------------------------------------------------------------------------------------------------


def app_settings() -> dict[str, Any]:
    settings: dict[str, Any] = (
        load(FUNCTION_APP).resource("Microsoft.Web/sites/config", "appsettings").body["properties"]
    )
    return settings


def site() -> dict[str, Any]:
    return load(FUNCTION_APP).resource("Microsoft.Web/sites").body


def auth_settings() -> dict[str, Any]:
    settings: dict[str, Any] = (
        load(FUNCTION_APP).resource("Microsoft.Web/sites/config", "authsettingsV2").body["properties"]
    )
    return settings


def depends_on(decl: Decl) -> set[str]:
    return {text(d) for d in decl.body.get("dependsOn", [])}


def main_value(name: str, **overrides: Any) -> Any:
    """A variable or parameter of main.bicep in the default deployment."""
    return resolve(MAIN, _ident(name), **overrides)


def _ident(name: str) -> BicepElement:
    """A reference to a parameter or variable, as pycep gives one."""
    return BicepElement(name)


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def readme_section(title: str) -> str:
    """The README section under the first heading that starts with title, up to the next heading of its level."""
    text_ = readme()
    m = re.search(rf"^(#+) {re.escape(title)}[^\n]*$", text_, re.MULTILINE)
    assert m, f"README.md has no section {title!r}"
    level = len(m.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text_, m.end())
    return text_[m.end() : end.start() if end else len(text_)]


# --------------------------------------------------------------------------------------------------
# The templates as a whole
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_avoids_constructs_checkov_cannot_parse(path: Path) -> None:
    # pycep 0.7.1 (these tests) parses more than checkov's pinned pycep 0.5.1; keep to what both read.
    t = load(path)
    code = "\n".join(line.split("//")[0] for line in t.raw.splitlines())
    assert "br/public:" not in code and "br:" not in code, "registry modules hide resources from checkov"
    assert "=>" not in code, "lambdas (map/filter/...) break pycep 0.5.1"
    for keyword in ("import", "type", "func", "assert", "extension"):
        assert not re.search(rf"^\s*{keyword}\s", code, re.MULTILINE), f"`{keyword}` declarations break pycep 0.5.1"
    assert "..." not in code, "spread breaks pycep 0.5.1"
    assert not re.search(r"^param\s+\w+\s+\w+\?", code, re.MULTILINE), "nullable types break pycep 0.5.1"
    assert "resourceInput<" not in code and "resourceOutput<" not in code


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_parameter_is_described_and_secrets_are_secure(path: Path) -> None:
    t = load(path)
    assert t.params or path.name == "main.bicep"
    for name, param in t.params.items():
        assert param.description.strip(), f"{path.name}: param {name} has no @description"
        if re.search(r"password|secret|connectionstring|key$", name, re.IGNORECASE) and name != (
            "applicationInsightsConnectionString"
        ):
            assert "secure" in param.decorators, f"{path.name}: param {name} looks secret but is not @secure()"
            assert param.default is None, f"{path.name}: @secure() param {name} must not have a default"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_checkov_skip_is_justified_next_to_its_resource(path: Path) -> None:
    t = load(path)
    inside = "\n".join(t.comments_of(d) for d in [*t.resources(), *t.modules.values()])
    for m in re.finditer(r"checkov:skip=(\w+)(.*)", t.raw):
        assert m.group(0) in inside, f"{path.name}: skip {m.group(1)} is not inside a resource"
        reason = m.group(2).lstrip(":").strip()
        assert len(reason) >= 20, f"{path.name}: skip {m.group(1)} has no reason"


def test_modules_exist_and_get_every_required_parameter() -> None:
    main = load(MAIN)
    assert main.target_scope == "subscription"
    expected = {"identity", "monitoring", "storage", "rbac", "postgres", "functionapp", "network"}
    assert expected <= {Path(m.module_path).stem for m in main.modules.values()}
    for decl in main.modules.values():
        module_path = INFRA / decl.module_path
        assert module_path.exists(), f"module {decl.name}: {decl.module_path} is missing"
        module = load(module_path)
        passed = set(decl.body.get("params", {}))
        unknown = passed - set(module.params)
        assert not unknown, f"module {decl.name} passes unknown params {unknown}"
        required = {n for n, p in module.params.items() if p.default is None}
        assert required <= passed, f"module {decl.name} misses required params {required - passed}"


def test_names_come_from_a_resource_token() -> None:
    main = load(MAIN)
    assert "unique_string(" in text(main.vars["resourceToken"].value)
    for decl in main.modules.values():
        name = decl.body.get("params", {}).get("name")
        if name is not None:
            rendered = text(name)
            assert any(v in rendered for v in ("resourceToken", "functionAppName")), (
                f"module {decl.name}: name {rendered} has no resourceToken"
            )


@pytest.mark.parametrize("name", sorted(main_parameter_overrides()))
def test_parameter_file_defaults_match_the_template_defaults(name: str) -> None:
    # main.parameters.json gives the default deployment; where it also names a default, it is the template's,
    # so the two never disagree about what a plain `azd up` deploys.
    param = load(MAIN).params[name]
    assert param.default is not None, f"{name}: give the template a default as well"
    assert main_parameter_overrides()[name] == resolve(MAIN, param.default), name


def test_default_deployment_needs_no_parameter_beyond_what_azd_sets() -> None:
    data = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    # Parameters without a default in the template must come from azd (its own variables, the preprovision
    # hook, or the one value the README asks for: ENTRA_CLIENT_ID).
    asked = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_NAME", "ENTRA_CLIENT_ID"}
    for name, param in load(MAIN).params.items():
        if param.default is None:
            assert name in data, f"required parameter {name} is not mapped in main.parameters.json"
            variable = re.fullmatch(r"\$\{(\w+)\}", data[name]["value"])
            assert variable and variable.group(1) in asked, f"{name}: {data[name]['value']}"
    deploy = readme_section("Deploy")
    assert "azd env set ENTRA_CLIENT_ID" in deploy


def test_private_networking_is_mapped_and_on_by_default() -> None:
    assert main_parameter_overrides()["privateNetworking"] is True
    assert main_value("privateNetworking") is True
    assert text(load(MAIN).modules["network"].condition) == "privateNetworking"


# --------------------------------------------------------------------------------------------------
# Function app on Flex Consumption
# --------------------------------------------------------------------------------------------------


def test_plan_is_flex_consumption_linux() -> None:
    plan = load(FUNCTION_APP).resource("Microsoft.Web/serverfarms").body
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True


def test_runtime_is_python_311_on_linux() -> None:
    s = site()
    assert s["kind"] == "functionapp,linux"
    runtime = s["properties"]["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    assert resolve(FUNCTION_APP, runtime["version"]) == "3.11"


def test_scale_settings_are_accepted_in_every_region() -> None:
    scale = resolve(FUNCTION_APP, site()["properties"]["functionAppConfig"]["scaleAndConcurrency"])
    assert scale["instanceMemoryMB"] in {512, 2048, 4096}
    # Values below 40 are a preview in a few regions only (azure-functions-host #10523, azure-docs PR #128255).
    assert 40 <= scale["maximumInstanceCount"] <= 1000
    for path in (MAIN, FUNCTION_APP):
        assert int(load(path).params["maximumInstanceCount"].decorators["min_value"]) >= 40, path.name
    # Python's platform default is 1 concurrent request per instance; the handlers are async.
    assert scale["triggers"]["http"]["perInstanceConcurrency"] >= 8


def test_always_ready_instances_are_optional() -> None:
    scale = site()["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert resolve(FUNCTION_APP, scale["alwaysReady"]) == []
    assert resolve(FUNCTION_APP, scale["alwaysReady"], alwaysReadyInstanceCount=2) == [
        {"name": "http", "instanceCount": 2}
    ]


def test_deployment_and_host_storage_use_the_identity_without_keys() -> None:
    deployment = site()["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert text(deployment["authentication"]["userAssignedIdentityResourceId"]) == "identityId"
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert text(settings["AzureWebJobsStorage__clientId"]) == "identityClientId"
    assert text(settings["AzureWebJobsStorage__blobServiceUri"]) == "storageBlobEndpoint"
    assert "AzureWebJobsStorage" not in settings, "no connection string: identity-based host storage"
    storage = load(STORAGE).resource("Microsoft.Storage/storageAccounts").body["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"


def test_site_is_hardened() -> None:
    s = site()
    props = s["properties"]
    assert props["httpsOnly"] is True
    config = props["siteConfig"]
    assert config["minTlsVersion"] in {"1.2", "1.3"}
    assert config.get("remoteDebuggingEnabled") is False
    assert config.get("ftpsState", "Disabled") == "Disabled"
    policies = load(FUNCTION_APP).resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {p.body["name"]: p.body["properties"]["allow"] for p in policies}
    assert by_name.get("ftp") is False
    assert by_name.get("scm") is False
    assert s["identity"]["type"] == "UserAssigned"


def test_http2_is_on_and_checkov_checks_it() -> None:
    assert site()["properties"]["siteConfig"]["http20Enabled"] is True
    raw = load(FUNCTION_APP).raw
    assert "CKV_AZURE_18" not in raw and "CKV_AZURE_67" not in raw, "Flex supports HTTP/2: no skip needed"


def test_site_config_is_minimal_on_flex() -> None:
    config = site()["properties"]["siteConfig"]
    assert not set(config) & FLEX_FORBIDDEN_SITE_CONFIG
    assert "appSettings" not in config, "app settings live in the appsettings config resource"


def test_forbidden_flex_settings_are_absent() -> None:
    assert not set(app_settings()) & FLEX_FORBIDDEN_SETTINGS
    for path in bicep_files():
        code = "\n".join(line.split("//")[0] for line in load(path).raw.splitlines())
        for name in FLEX_FORBIDDEN_SETTINGS:
            assert not re.search(rf"\b{name}\b", code), f"{path.name} sets {name}, which Flex forbids"


# --------------------------------------------------------------------------------------------------
# CORS and EasyAuth
# --------------------------------------------------------------------------------------------------


def test_cors_choice_any_origin_without_credentials() -> None:
    cors = site()["properties"]["siteConfig"]["cors"]
    # Bearer tokens only, never cookies: credentials are never allowed, whatever the origin list.
    assert cors["supportCredentials"] is False
    # Default: any origin, which the SPA and the anonymous MCP Registry clients both need.
    assert resolve(FUNCTION_APP, cors["allowedOrigins"]) == ["*"]
    # The narrowing knob exists for deployments without the registry routes.
    assert load(MAIN).params["corsAllowedOrigins"].data["type"] == "array"
    for path in bicep_files():
        values = re.findall(r"supportCredentials\s*:\s*(\S+)", load(path).raw)
        assert set(values) <= {"false"}, f"{path.name}: supportCredentials must stay false"
    # The choice and its reasoning are written down for the README.
    assert "supportCredentials" in readme() and "corsAllowedOrigins" in readme()


def test_readme_says_the_platform_answers_preflights_and_keeps_exposed_headers() -> None:
    cors = readme_section("CORS: why any origin, and never credentials")
    assert re.search(r"platform answers (CORS )?preflight", cors, re.IGNORECASE)
    assert "Access-Control-Expose-Headers" in cors
    assert re.search(r"keeps? the app's\s+`?Access-Control-Expose-Headers", cors)


def test_easyauth_protects_the_api_with_entra() -> None:
    auth = auth_settings()
    assert auth["platform"]["enabled"] is True
    validation = auth["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    assert auth["httpSettings"]["requireHttps"] is True
    assert auth["login"]["tokenStore"]["enabled"] is False
    aad = auth["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    registration = aad["registration"]
    assert text(registration["clientId"]) == "entraClientId"
    assert text(registration["openIdIssuer"]).endswith("${entraTenantId}/v2.0'")
    assert "clientSecretSettingName" not in registration, "bearer-only API: no client secret"
    assert [text(a) for a in aad["validation"]["allowedAudiences"]] == ["entraClientId", "'api://${entraClientId}'"]
    call = module_call(FUNCTION_APP)
    assert call is not None
    assert text(call.body["params"]["entraClientId"]) == "entraClientId"
    assert text(call.body["params"]["entraTenantId"]) == "tenantId"
    assert "tenant().tenantId" in text(load(MAIN).vars["tenantId"].value)


def test_readme_requires_v2_access_tokens() -> None:
    # EasyAuth is configured with the v2.0 issuer; a registration without requestedAccessTokenVersion 2 issues
    # v1 tokens (issuer https://sts.windows.net/<tenant>/), which that configuration rejects.
    assert text(auth_settings()["identityProviders"]["azureActiveDirectory"]["registration"]["openIdIssuer"]).endswith(
        "/v2.0'"
    )
    steps = readme_section("Manual steps")
    item = steps[steps.index('"requestedAccessTokenVersion": 2') :][:400]
    assert "Required" in item.split("\n   4.")[0], item
    assert "Recommended" not in steps


def _covered(path: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/*") and path.lower().startswith(pattern[:-1].lower()):
            return True
        if path.lower() == pattern.lower():
            return True
    return False


def test_easyauth_excludes_the_anonymous_routes() -> None:
    excluded = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"])
    assert isinstance(excluded, list)
    for path in ("/api/health", "/api/openapi.json", "/api/v0.1/servers", "/api/v0.1/servers/*"):
        assert path in excluded, f"{path} must be reachable without a token"
    assert _covered("/api/v0.1/servers/com.contoso%2Fweather/versions/latest", excluded)
    # Nothing else is anonymous.
    assert not _covered("/api/registrations", excluded)
    assert not _covered("/api/audit-logs", excluded)
    # Excluded paths are request paths: they carry host.json's route prefix.
    prefix = "/" + route_prefix().strip("/")
    assert all(p.startswith(prefix + "/") for p in excluded)
    # Without the registry routes only health and the API description (document and docs page) stay anonymous.
    narrowed = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"], mcpRegistryEnabled=False)
    assert sorted(narrowed) == ["/api/docs", "/api/docs/*", "/api/health", "/api/openapi.json"]


def test_every_public_route_of_the_app_is_excluded_from_easyauth() -> None:
    excluded = resolve(FUNCTION_APP, auth_settings()["globalValidation"]["excludedPaths"])
    public_routes = [
        # Public = the auth decorator applied records it, or no auth decorator was applied at all.
        re.sub(r"\{[^}]*\}", "x", RouteTemplate.parse(route_prefix(), route.route).path)
        for route in http_routes(function_app.app)
        if auth_of(route.handler) in {"public", None}
    ]
    assert "/api/health" in public_routes
    for route in public_routes:
        assert _covered(route, excluded), f"public route {route} is blocked by EasyAuth"


def test_app_settings_describe_the_entra_api() -> None:
    settings = app_settings()
    assert text(settings["ENTRA_TENANT_ID"]) == "entraTenantId"
    assert text(settings["ENTRA_CLIENT_ID"]) == "entraClientId"
    assert text(settings["ENTRA_ADMIN_ROLE"]) == "entraAdminRole"
    assert text(settings["ENTRA_ADMIN_GROUP_ID"]) == "entraAdminGroupId"
    assert resolve(FUNCTION_APP, settings["ENTRA_ADMIN_ROLE"]) == "Admin"
    assert resolve(FUNCTION_APP, settings["ENTRA_ADMIN_GROUP_ID"]) == ""  # empty = unset for the app


# --------------------------------------------------------------------------------------------------
# Settings the app reads
# --------------------------------------------------------------------------------------------------


def test_every_setting_the_app_reads_is_set_or_optional() -> None:
    read = setting_names()
    set_by_bicep = set(app_settings())
    missing = read - set_by_bicep - set(OPTIONAL_SETTINGS)
    assert not missing, f"settings the app reads but the Bicep neither sets nor lists as optional: {missing}"
    # Keep the optional list honest: every entry is read by the app and not also set by the Bicep.
    assert set(OPTIONAL_SETTINGS) <= read, f"stale OPTIONAL_SETTINGS: {set(OPTIONAL_SETTINGS) - read}"
    assert not set(OPTIONAL_SETTINGS) & set_by_bicep
    # And the Bicep sets nothing the app, the host or the worker does not use.
    extra = set_by_bicep - read - set(SET_FOR_OTHERS)
    assert not extra, f"app settings nobody reads: {extra}"


def test_database_settings_use_entra_and_verified_tls() -> None:
    settings = app_settings()
    assert (
        text(settings["DATABASE_URL"])
        == "'postgresql://${identityName}@${postgresHost}:${postgresPort}/${postgresDatabaseName}'"
    )
    assert settings["DATABASE_AUTH"] == "entra"
    assert settings["DB_SSL"] == "verify-full"
    assert text(settings["AZURE_CLIENT_ID"]) == "identityClientId"
    assert resolve(FUNCTION_APP, settings["DB_POOL_MIN_SIZE"]) == "0"
    assert resolve(FUNCTION_APP, settings["DB_POOL_MAX_SIZE"]) == str(main_value("dbPoolMaxSize"))
    # Behind PgBouncer (transaction pooling) asyncpg's statement cache must be off.
    assert resolve(FUNCTION_APP, settings["DB_STATEMENT_CACHE_SIZE"], postgresSkuTier="GeneralPurpose") == "0"
    assert "administratorLoginPassword" not in load(POSTGRES).raw


def test_postgres_port_follows_pgbouncer() -> None:
    port = load(POSTGRES).outputs["port"].value
    assert resolve(POSTGRES, port) == 5432  # default Burstable: no PgBouncer
    assert resolve(POSTGRES, port, postgresSkuTier="GeneralPurpose") == 6432
    call = module_call(FUNCTION_APP)
    assert call is not None and text(call.body["params"]["postgresPort"]) == "postgres.outputs.port"


def test_telemetry_is_configured_by_the_worker_with_entra_ingestion() -> None:
    settings = app_settings()
    assert text(settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == "applicationInsightsConnectionString"
    assert (
        text(settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
        == "'ClientId=${identityClientId};Authorization=AAD'"
    )
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    insights = load(MONITORING).resource("Microsoft.Insights/components").body["properties"]
    assert insights["DisableLocalAuth"] is True
    assert text(insights["WorkspaceResourceId"]) == "logAnalytics.id"


# --------------------------------------------------------------------------------------------------
# Diagnostic settings
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scope", "logs", "metrics"),
    [
        (FUNCTION_APP, "site", True, "AllMetrics"),
        (POSTGRES, "server", True, "AllMetrics"),
        (STORAGE, "blobService", True, "Transaction"),
        (STORAGE, "storage", False, "Transaction"),
    ],
    ids=["function app", "postgresql", "blob storage", "storage account"],
)
def test_diagnostic_settings_send_logs_and_metrics_to_log_analytics(
    path: Path, scope: str, logs: bool, metrics: str
) -> None:
    settings = [
        d for d in load(path).resources("Microsoft.Insights/diagnosticSettings") if text(d.body["scope"]) == scope
    ]
    assert len(settings) == 1, f"{path.name}: expected one diagnostic setting on {scope}"
    props = settings[0].body["properties"]
    assert text(props["workspaceId"]) == "logAnalyticsWorkspaceId"
    assert settings[0].condition is None, "always deployed"
    if logs:
        assert {"categoryGroup": "allLogs", "enabled": True} in props["logs"]
    assert {"category": metrics, "enabled": True} in props["metrics"]
    # The workspace is the one Application Insights uses.
    call = module_call(path)
    assert (
        call is not None and text(call.body["params"]["logAnalyticsWorkspaceId"]) == "monitoring.outputs.logAnalyticsId"
    )
    assert text(load(MONITORING).outputs["logAnalyticsId"].value) == "logAnalytics.id"


# --------------------------------------------------------------------------------------------------
# Identity and roles
# --------------------------------------------------------------------------------------------------


def test_one_user_assigned_identity() -> None:
    identities = [
        d
        for path in bicep_files()
        for d in load(path).resources("Microsoft.ManagedIdentity/userAssignedIdentities")
        if not d.existing
    ]
    assert len(identities) == 1


def test_role_assignments_are_least_privilege() -> None:
    roles: dict[str, str] = {}
    for path in bicep_files():
        for decl in load(path).resources("Microsoft.Authorization/roleAssignments"):
            props = decl.body["properties"]
            role_id = resolve(path, props["roleDefinitionId"]["function"]["parameters"]["resource_name_1"])
            roles[role_id] = text(decl.body["scope"])
            assert props["principalType"] == "ServicePrincipal"
    assert roles.get(STORAGE_BLOB_DATA_OWNER) == "storage"
    assert roles.get(MONITORING_METRICS_PUBLISHER) == "applicationInsights"
    assert not set(roles) & BROAD_ROLES
    vaults = [d for p in bicep_files() for d in load(p).resources("Microsoft.KeyVault/vaults")]
    assert (KEY_VAULT_SECRETS_USER in roles) == bool(vaults), "Key Vault Secrets User only with a vault"
    # Role assignments exist before the app starts using storage.
    call = module_call(FUNCTION_APP)
    assert call is not None and "rbac" in depends_on(call)


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


def test_postgres_server_defaults_and_entra_only_auth() -> None:
    server = load(POSTGRES).resource("Microsoft.DBforPostgreSQL/flexibleServers").body
    props = server["properties"]
    assert props["authConfig"]["activeDirectoryAuth"] == "Enabled"
    assert props["authConfig"]["passwordAuth"] == "Disabled"
    assert props["storage"]["autoGrow"] == "Enabled"
    assert 7 <= resolve(POSTGRES, props["backup"]["backupRetentionDays"]) <= 35
    assert resolve(POSTGRES, props["highAvailability"]["mode"]) == "Disabled"
    assert resolve(POSTGRES, props["highAvailability"]["mode"], postgresZoneRedundantHa=True) == "ZoneRedundant"
    assert resolve(POSTGRES, server["sku"]) == {"name": "Standard_B2s", "tier": "Burstable"}
    main = load(MAIN)
    for name in ("postgresVersion", "postgresSkuName", "postgresSkuTier", "postgresZoneRedundantHa"):
        assert name in main.params
    assert "GeneralPurpose" in main.params["postgresSkuName"].description


def test_postgres_versions_are_the_ones_the_api_version_accepts() -> None:
    resources = [d for d in load(POSTGRES).resources() if d.type.startswith("Microsoft.DBforPostgreSQL/")]
    api_versions = {d.api_version for d in resources}
    assert len(api_versions) == 1, f"one API version for every PostgreSQL resource, found {api_versions}"
    (api_version,) = api_versions
    accepted = POSTGRES_VERSIONS_BY_API[api_version]
    for path in (MAIN, POSTGRES):
        param = load(path).params["postgresVersion" if path == MAIN else "version"]
        allowed = set(param.decorators["allowed"])
        assert allowed <= accepted, f"{path.name}: {sorted(allowed - accepted)} not accepted by {api_version}"
        assert resolve(path, param.default) in allowed
    assert (
        resolve(
            POSTGRES, load(POSTGRES).resource("Microsoft.DBforPostgreSQL/flexibleServers").body["properties"]["version"]
        )
        in accepted
    )


def test_database_is_created_after_the_entra_administrator_who_owns_it() -> None:
    t = load(POSTGRES)
    database = t.resource("Microsoft.DBforPostgreSQL/flexibleServers/databases")
    admin = t.resource("Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    assert "administrator" in depends_on(database)
    assert "database" not in depends_on(admin)
    # The reason is written next to the resource and at the top of the file.
    assert "owns" in t.comments_of(database) or "owner" in t.comments_of(database)
    assert re.search(r"AFTER the Entra administrator", t.raw)
    # The hook refuses to migrate a database the administrator cannot create tables in.
    assert "has_schema_privilege('public', 'CREATE')" in database_setup.OWNER_SQL


def test_postgres_writes_are_serialized() -> None:
    t = load(POSTGRES)
    (configurations,) = t.resources("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    assert configurations.loop is not None
    assert configurations.decorators.get("batchSize") == 1
    (firewall,) = t.resources("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")
    assert firewall.decorators.get("batchSize") == 1
    assert "firewall" in depends_on(configurations)
    # The Entra administrator is a separate resource created after the configurations.
    admin = t.resource("Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    assert text(admin.body["parent"]) == "server"
    assert "configurations" in depends_on(admin)
    # The private endpoint comes last.
    assert "database" in depends_on(t.resource("Microsoft.Network/privateEndpoints"))


def _server_parameters(**overrides: Any) -> dict[str, str]:
    (configurations,) = load(POSTGRES).resources("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    return {row["name"]: row["properties"]["value"] for row in resolve_in_loop(POSTGRES, configurations, **overrides)}


def test_tls_required_and_pgbouncer_only_off_burstable() -> None:
    default = _server_parameters()
    assert default["require_secure_transport"] == "on"
    assert "pgbouncer.enabled" not in default  # Burstable has no built-in PgBouncer
    general = _server_parameters(postgresSkuTier="GeneralPurpose")
    assert general["pgbouncer.enabled"] == "true"
    assert general["require_secure_transport"] == "on"


def test_extension_allow_list_covers_every_created_extension() -> None:
    created = set()
    for sql in sorted((ROOT / "sql").glob("*.sql")):
        sql_text = re.sub(r"--[^\n]*", "", sql.read_text(encoding="utf-8"))
        for m in re.finditer(r"CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([\w-]+)\"?", sql_text, re.IGNORECASE):
            created.add(m.group(1).upper())
    assert created, "expected at least pg_trgm in sql/"
    allowed = {e.strip().upper() for e in _server_parameters()["azure.extensions"].split(",") if e.strip()}
    assert created <= allowed, f"extensions missing from azure.extensions: {created - allowed}"


def _firewall_rules(**overrides: Any) -> list[dict[str, Any]]:
    (firewall,) = load(POSTGRES).resources("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")
    return resolve_in_loop(POSTGRES, firewall, **overrides)


def _public_network_access(**overrides: Any) -> Any:
    server = load(POSTGRES).resource("Microsoft.DBforPostgreSQL/flexibleServers").body
    return resolve(POSTGRES, server["properties"]["network"]["publicNetworkAccess"], **overrides)


def test_default_deployment_reaches_postgres_only_through_its_private_endpoint() -> None:
    assert _public_network_access() == "Disabled"
    assert _firewall_rules() == []
    pe = load(POSTGRES).resource("Microsoft.Network/privateEndpoints")
    assert resolve(POSTGRES, pe.condition) is True
    assert pe.body["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] == ["postgresqlServer"]
    # The app's outbound traffic goes through the VNet, where the privatelink zone resolves the server.
    assert resolve(FUNCTION_APP, site()["properties"]["virtualNetworkSubnetId"]) != ""
    load(NETWORK).resource("Microsoft.Network/privateDnsZones", "privatelink.postgres.database.azure.com")


def test_public_deployment_reaches_postgres_through_the_azure_services_rule() -> None:
    # Without private networking the app has no fixed outbound IPs: the 0.0.0.0 rule is what lets it in.
    assert _public_network_access(privateNetworking=False) == "Enabled"
    rules = _firewall_rules(privateNetworking=False)
    assert [(r["properties"]["startIpAddress"], r["properties"]["endIpAddress"]) for r in rules] == [
        ("0.0.0.0", "0.0.0.0")
    ]
    extra = {"name": "office", "startIpAddress": "203.0.113.7", "endIpAddress": "203.0.113.7"}
    assert len(_firewall_rules(privateNetworking=False, postgresFirewallRules=[extra])) == 2
    assert _firewall_rules(postgresFirewallRules=[extra]) == [], "no public rules on a private server"


def test_default_deployment_reaches_storage_only_through_its_private_endpoint() -> None:
    storage = load(STORAGE).resource("Microsoft.Storage/storageAccounts").body["properties"]
    assert resolve(STORAGE, storage["publicNetworkAccess"]) == "Disabled"
    assert resolve(STORAGE, storage["networkAcls"])["defaultAction"] == "Deny"
    assert resolve(STORAGE, storage["publicNetworkAccess"], privateNetworking=False) == "Enabled"
    pe = load(STORAGE).resource("Microsoft.Network/privateEndpoints")
    assert resolve(STORAGE, pe.condition) is True
    assert pe.body["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] == ["blob"]
    dns = load(STORAGE).resource("Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert text(dns.body["properties"]["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"]) == (
        "blobPrivateDnsZoneId"
    )
    zones = {text(z.body["name"]) for z in load(NETWORK).resources("Microsoft.Network/privateDnsZones")}
    assert "'privatelink.blob.${environment().suffixes.storage}'" in zones
    # The host only uses blobs (identity-based AzureWebJobsStorage with a blob URI): no queue/table endpoint.
    assert not any(k.startswith(("AzureWebJobsStorage__queue", "AzureWebJobsStorage__table")) for k in app_settings())


def test_hook_documents_and_implements_how_it_reaches_a_private_server() -> None:
    text_ = hook()
    assert "POSTGRES_HOOK_NETWORK" in text_
    # public-window: PATCH publicNetworkAccess (same API version as the template), open, and always close again.
    assert "az rest --method patch" in text_ and '\\"publicNetworkAccess\\": \\"$1\\"' in text_
    server = load(POSTGRES).resource("Microsoft.DBforPostgreSQL/flexibleServers")
    assert f"?api-version={server.api_version}" in text_
    assert "set_public_access Enabled" in text_
    assert "trap cleanup EXIT" in text_ and "set_public_access Disabled" in text_, "the hook closes the server again"
    network = readme_section("Network access")
    assert "POSTGRES_HOOK_NETWORK" in network and "direct" in network


# --------------------------------------------------------------------------------------------------
# The connection budget
# --------------------------------------------------------------------------------------------------


def _budget(**overrides: Any) -> dict[str, Any]:
    return {
        "sku": main_value("postgresSkuName", **overrides),
        "pgbouncer": main_value("pgBouncerEnabled", **overrides),
        "instances": main_value("appInstancesAtMost", **overrides),
        "clients": main_value("appClientConnectionsAtMost", **overrides),
        "budget": main_value("postgresConnectionBudget", **overrides),
    }


def _assert_budget_fits(**overrides: Any) -> dict[str, Any]:
    b = _budget(**overrides)
    assert b["sku"] in MAX_CONNECTIONS, f"add {b['sku']}'s max_connections to MAX_CONNECTIONS"
    usable = MAX_CONNECTIONS[b["sku"]] - RESERVED_CONNECTIONS
    assert b["budget"] <= usable, f"budget {b['budget']} > {usable} usable connections on {b['sku']}"
    if b["pgbouncer"]:
        assert b["clients"] <= PGBOUNCER_MAX_CLIENT_CONN
    return b


def test_connection_budget_counts_always_ready_instances_and_the_pool() -> None:
    scale = resolve(
        FUNCTION_APP, site()["properties"]["functionAppConfig"]["scaleAndConcurrency"], alwaysReadyInstanceCount=3
    )
    pool_max = int(resolve(FUNCTION_APP, app_settings()["DB_POOL_MAX_SIZE"]))
    b = _budget(alwaysReadyInstanceCount=3)
    # The numbers the budget uses are the ones the function app is deployed with.
    assert b["instances"] == scale["maximumInstanceCount"] + scale["alwaysReady"][0]["instanceCount"]
    assert b["clients"] == b["instances"] * pool_max
    assert b["budget"] == b["clients"] + main_value("adminConnectionsAtMost")


def test_connection_budget_fits_the_default_server() -> None:
    b = _assert_budget_fits()
    assert b["pgbouncer"] is False  # default Burstable


@pytest.mark.parametrize("always_ready", [0, 10])
def test_connection_budget_fits_with_every_allowed_always_ready_count(always_ready: int) -> None:
    assert always_ready in (0, int(load(MAIN).params["alwaysReadyInstanceCount"].decorators["max_value"]))
    _assert_budget_fits(alwaysReadyInstanceCount=always_ready)


def test_connection_budget_behind_pgbouncer_is_its_pool() -> None:
    overrides = {
        "postgresSkuName": "Standard_D2ds_v5",
        "postgresSkuTier": "GeneralPurpose",
        "maximumInstanceCount": 200,
    }
    b = _assert_budget_fits(**overrides)
    assert b["pgbouncer"] is True
    assert b["budget"] == main_value("pgBouncerPoolSize") + main_value("adminConnectionsAtMost")
    # The pool size the budget assumes is the one PgBouncer is configured with.
    configured = _server_parameters(postgresSkuTier="GeneralPurpose")["pgbouncer.default_pool_size"]
    assert int(configured) == main_value("pgBouncerPoolSize")


def test_connection_budget_is_computed_in_main_bicep_only() -> None:
    for path in bicep_files():
        if path != MAIN:
            assert not re.search(r"\w+\s*\*\s*dbPoolMaxSize|dbPoolMaxSize\s*\*", load(path).raw), path.name
    assert text(load(MAIN).outputs["POSTGRES_CONNECTION_BUDGET"].value) == "postgresConnectionBudget"


def test_readme_states_the_connection_budget() -> None:
    budget = readme_section("Connection budget")
    b = _budget()
    assert "always-ready" in budget and "PgBouncer" in budget
    assert f"= {b['budget']}" in budget, f"the README should show the default budget {b['budget']}"


# --------------------------------------------------------------------------------------------------
# azd, the hook and the files the platform reads
# --------------------------------------------------------------------------------------------------


def hook() -> str:
    return (INFRA / "hooks" / "postprovision.sh").read_text(encoding="utf-8")


def test_outputs_give_the_frontend_and_the_hook_what_they_need() -> None:
    outputs = load(MAIN).outputs
    for name in ("API_BASE_URL", "ENTRA_CLIENT_ID", "ENTRA_TENANT_ID", "ENTRA_API_SCOPE", "SERVICE_API_NAME"):
        assert name in outputs
    assert text(outputs["API_BASE_URL"].value) == "functionApp.outputs.url"
    fn_url = load(FUNCTION_APP).outputs["url"].value
    assert text(fn_url) == "'https://${site.properties.defaultHostName}/" + route_prefix().strip("/") + "'"
    assert text(outputs["ENTRA_API_SCOPE"].value) == "'api://${entraClientId}/${entraApiScopeName}'"
    for name in set(re.findall(r"\$\{(\w+):\?", hook())):
        assert name in outputs, f"the hook requires {name}, which main.bicep does not output"
    assert text(outputs["APP_IDENTITY_PRINCIPAL_ID"].value) == "identity.outputs.principalId"


def test_azure_yaml_deploys_one_function_service_with_the_hook() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    services = re.search(r"^services:\n((?:[ \t]+.*\n?)+)", azure_yaml, re.MULTILINE)
    assert services
    block = services.group(1)
    assert re.search(r"^  api:\s*$", block, re.MULTILINE)
    assert len(re.findall(r"^  \w[\w-]*:\s*$", block, re.MULTILINE)) == 1, "one service"
    assert re.search(r"^\s+project:\s*\.\s*$", block, re.MULTILINE)
    assert re.search(r"^\s+language:\s*python\s*$", block, re.MULTILINE)
    assert re.search(r"^\s+host:\s*function\s*$", block, re.MULTILINE)
    run = re.search(r"^  postprovision:\n(?:\s{4}.*\n)*?\s{4}run:\s*(\S+)", azure_yaml, re.MULTILINE)
    assert run
    hook_path = ROOT / run.group(1)
    assert hook_path.exists() and os.access(hook_path, os.X_OK)
    assert "azd-service-name" in load(FUNCTION_APP).raw
    assert resolve(FUNCTION_APP, _ident("serviceName")) == "api"


def test_postprovision_hook_checks_the_owner_migrates_then_creates_the_app_role() -> None:
    text_ = hook()
    assert text_.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text_
    commands = (
        "-m infra.hooks.database_setup check-owner",
        "-m shared.migrate",
        "-m infra.hooks.database_setup app-role",
    )
    steps = [text_.index(f'"${{py[@]}}" {command}\n') for command in commands]
    assert steps == sorted(steps)
    assert ":5432/" in text_, "migrations connect directly, never through PgBouncer"
    assert (ROOT / "shared" / "migrate.py").exists()


def test_app_role_is_bound_to_the_identity_object_id() -> None:
    # tests/test_infra_hook.py runs the steps against PostgreSQL; pgaadauth itself exists only on Azure.
    assert database_setup.CREATE_PRINCIPAL_SQL == (
        "SELECT * FROM pgaadauth_create_principal_with_oid($1, $2, 'service', false, false)"
    )
    source = Path(database_setup.__file__).read_text(encoding="utf-8")
    assert not re.search(r"pgaadauth_create_principal\(", source), "by name is fragile: bind the object id"
    assert 'os.environ["APP_IDENTITY_PRINCIPAL_ID"]' in source
    assert "APP_IDENTITY_PRINCIPAL_ID" in load(MAIN).outputs


def test_planner_settings_are_set_on_the_database_not_the_role() -> None:
    statements = database_setup.grant_statements("id-app", "mcpregistry")
    assert 'ALTER DATABASE "mcpregistry" SET jit = off' in statements
    assert 'ALTER DATABASE "mcpregistry" SET random_page_cost = 1.1' in statements
    assert not [s for s in statements if "ALTER ROLE" in s], "ALTER ROLE on a platform role needs ADMIN OPTION"


def test_checkov_gate_is_pinned_and_checks_parse_errors() -> None:
    script = ROOT / ".ci" / "checkov.sh"
    assert os.access(script, os.X_OK)
    script_text = script.read_text(encoding="utf-8")
    assert re.search(r"checkov==\$\{CHECKOV_VERSION\}|checkov==\d", script_text)
    assert "--skip-download" in script_text and "--framework bicep" in script_text
    assert "parsing_errors" in script_text


def test_readme_deploy_section_lists_the_remaining_manual_steps() -> None:
    steps = readme_section("Manual steps")
    # Exactly these remain: the API app registration (v2 tokens, Admin app role) and the Microsoft.App provider.
    assert "az provider register --namespace Microsoft.App" in steps
    assert "requestedAccessTokenVersion" in steps and "**`Admin`**" in steps
    numbered = re.findall(r"^\d+\. ", steps, re.MULTILINE)
    assert len(numbered) == 2, f"manual steps: {numbered}"
    # Nothing the template now does by itself is still asked of the reader.
    deploy = readme_section("Deploy to Azure")
    for stale in ("postgresAllowAzureServices", "POSTGRES_HOOK_OPEN_FIREWALL", "Standard_B1ms`/`Burstable` for dev"):
        assert stale not in deploy, stale


def test_host_json_matches_the_platform_setup() -> None:
    host = read_host_json()
    assert host["version"] == "2.0"
    assert host.get("telemetryMode") == "OpenTelemetry"
    assert route_prefix() == "api"
    bundle = host.get("extensionBundle")
    if bundle is not None:  # HTTP needs no bundle; Flex requires 4.x when one is present
        assert bundle["version"].startswith("[4.")


def test_local_settings_example_matches_the_cloud_configuration() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    values = example["Values"]
    # Core Tools needs the worker runtime locally; on Flex it comes from functionAppConfig.
    assert values.get("FUNCTIONS_WORKER_RUNTIME") == "python"
    # Same CORS decision locally: credentials never.
    assert example.get("Host", {}).get("CORSCredentials", False) is False
    # The worker-configured telemetry switch is Azure-only (the app configures telemetry itself locally).
    assert values.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "") in {"", "false"}
    # The example lists every setting the app reads (API.md), except what only the platform sets.
    azure_only = {"WEBSITE_AUTH_ENABLED", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "AZURE_CLIENT_ID"}
    missing = setting_names() - set(values) - azure_only
    assert not missing, f"local.settings.json.example does not list: {sorted(missing)}"
