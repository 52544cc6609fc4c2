"""Settings: read lazily from the environment; a missing or invalid one fails with a message naming it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.local_settings import LOCAL_RUN_SETTINGS
from shared.db_connect import pool_options, ssl_context_for
from shared.settings import (
    AppSettings,
    AuthSettings,
    DatabaseSettings,
    SettingsError,
    clear_settings_cache,
    get_database_settings,
    is_loopback_url,
    setting_names,
)

ROOT = Path(__file__).resolve().parent.parent
TENANT = "6f1c2a4e-8b3d-4c5e-9f70-123456789abc"
CLIENT = "0b7e4a52-3c1d-4e8f-a9b6-fedcba987654"
DSN = "postgresql://app:s3cret-pw@db.example.com:5432/registry"

# The contract's Settings table (API.md); the example settings file must list each one.
CONTRACT_SETTINGS = {
    "DATABASE_URL",
    "DATABASE_AUTH",
    "DB_SSL",
    "DB_POOL_MIN_SIZE",
    "DB_POOL_MAX_SIZE",
    "DB_ACQUIRE_TIMEOUT_S",
    "DB_COMMAND_TIMEOUT_S",
    "DB_STATEMENT_CACHE_SIZE",
    "ENTRA_TENANT_ID",
    "ENTRA_CLIENT_ID",
    "ENTRA_ADMIN_ROLE",
    "ENTRA_ADMIN_GROUP_ID",
    "ENTRA_OPENID_CONFIG_URL",
    "AUTH_LEEWAY_S",
    "EASYAUTH_REQUIRED",
    "LOG_LEVEL",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}


def _auth_env(**overrides: str) -> dict[str, str]:
    return {"ENTRA_TENANT_ID": TENANT, "ENTRA_CLIENT_ID": CLIENT, **overrides}


# ---------------------------------------------------------------- missing and invalid settings


def test_missing_database_url_fails_naming_it() -> None:
    with pytest.raises(SettingsError, match=r"required setting DATABASE_URL is not set"):
        DatabaseSettings.from_env({})


def test_an_empty_setting_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        DatabaseSettings.from_env({"DATABASE_URL": "   "})


def test_missing_tenant_and_client_are_both_named() -> None:
    with pytest.raises(SettingsError) as raised:
        AuthSettings.from_env({})
    assert "ENTRA_TENANT_ID is not set" in str(raised.value)
    assert "ENTRA_CLIENT_ID is not set" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://user@host/db"),
        ("DATABASE_AUTH", "kerberos"),
        ("DB_SSL", "prefer"),
        ("DB_POOL_MAX_SIZE", "lots"),
        ("DB_POOL_MAX_SIZE", "0"),
        ("DB_POOL_MIN_SIZE", "-1"),
        ("DB_ACQUIRE_TIMEOUT_S", "0"),
        ("DB_COMMAND_TIMEOUT_S", "soon"),
        ("DB_STATEMENT_CACHE_SIZE", "-5"),
    ],
)
def test_an_invalid_database_setting_is_named(name: str, value: str) -> None:
    env = {"DATABASE_URL": DSN, name: value}
    with pytest.raises(SettingsError, match=rf"setting {name} is invalid"):
        DatabaseSettings.from_env(env)


def test_pool_minimum_above_maximum_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError) as raised:
        DatabaseSettings.from_env({"DATABASE_URL": DSN, "DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"})
    assert "DB_POOL_MIN_SIZE" in str(raised.value) and "DB_POOL_MAX_SIZE" in str(raised.value)


def test_an_invalid_dsn_error_does_not_echo_the_password() -> None:
    with pytest.raises(SettingsError) as raised:
        DatabaseSettings.from_env({"DATABASE_URL": "mysql://app:s3cret-pw@db/x"})
    assert "s3cret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENTRA_TENANT_ID", "contoso.onmicrosoft.com"),
        ("ENTRA_CLIENT_ID", "not-a-guid"),
        ("ENTRA_ADMIN_GROUP_ID", "admins"),
        ("AUTH_LEEWAY_S", "3600"),
        ("EASYAUTH_REQUIRED", "maybe"),
    ],
)
def test_an_invalid_auth_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"setting {name} is invalid"):
        AuthSettings.from_env(_auth_env(**{name: value}))


def test_an_invalid_log_level_is_named_and_case_is_ignored() -> None:
    with pytest.raises(SettingsError, match="setting LOG_LEVEL is invalid"):
        AppSettings.from_env({"LOG_LEVEL": "chatty"})
    assert AppSettings.from_env({"LOG_LEVEL": " debug "}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), (" TRUE ", True), ("1", True), ("yes", True), ("On", True),
     ("false", False), (" False", False), ("0", False), ("no", False), ("OFF", False)],
)
def test_a_flag_reads_true_or_false_in_any_case_with_surrounding_blanks(value: str, expected: bool) -> None:
    assert AuthSettings.from_env(_auth_env(EASYAUTH_REQUIRED=value)).easyauth_required is expected


def test_values_are_read_without_surrounding_blanks() -> None:
    settings = AuthSettings.from_env(_auth_env(ENTRA_TENANT_ID=f" {TENANT}\n", ENTRA_ADMIN_ROLE=" Registry.Admin "))
    assert str(settings.tenant_id) == TENANT
    assert settings.admin_role == "Registry.Admin"


# ---------------------------------------------------------------- the OpenID configuration override


@pytest.mark.parametrize(
    "url",
    [
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration",
        "http://127.0.0.1.attacker.example/.well-known/openid-configuration",
        "http://localhost.attacker.example/.well-known/openid-configuration",
        "http://127.0.0.1@attacker.example/.well-known/openid-configuration",
        "http://10.0.0.5/.well-known/openid-configuration",
        "file:///etc/openid-configuration",
        "ftp://127.0.0.1/openid-configuration",
    ],
)
def test_a_non_loopback_openid_configuration_url_is_refused(url: str) -> None:
    assert not is_loopback_url(url)
    with pytest.raises(SettingsError, match="setting ENTRA_OPENID_CONFIG_URL is invalid"):
        AuthSettings.from_env(_auth_env(ENTRA_OPENID_CONFIG_URL=url))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7071/local-issuer/v2.0/.well-known/openid-configuration",
        "http://localhost:8080/x/.well-known/openid-configuration",
        "https://[::1]:8443/x/.well-known/openid-configuration",
        "http://127.0.0.2/x/.well-known/openid-configuration",
    ],
)
def test_a_loopback_openid_configuration_url_replaces_the_tenants(url: str) -> None:
    settings = AuthSettings.from_env(_auth_env(ENTRA_OPENID_CONFIG_URL=url))
    assert settings.openid_configuration_url == url


def test_without_override_the_tenants_openid_configuration_is_used() -> None:
    settings = AuthSettings.from_env(_auth_env())
    assert settings.openid_configuration_url == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert settings.audiences == (CLIENT, f"api://{CLIENT}")


# ---------------------------------------------------------------- defaults and TLS


def test_database_defaults_are_small_and_bounded_for_serverless() -> None:
    settings = DatabaseSettings.from_env({"DATABASE_URL": DSN})
    assert settings.database_auth == "password"
    assert settings.pool_min_size == 0
    assert 1 <= settings.pool_max_size <= 10
    assert 0 < settings.acquire_timeout_s <= 10
    assert 0 < settings.command_timeout_s <= 30
    options = pool_options(settings)
    assert options["max_size"] == settings.pool_max_size
    assert options["command_timeout"] == settings.command_timeout_s
    assert options["timeout"] == settings.acquire_timeout_s


def test_tls_is_off_locally_and_verified_on_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBSITE_INSTANCE_ID", raising=False)
    local = DatabaseSettings.from_env({"DATABASE_URL": DSN})
    assert local.ssl_mode == "disable"
    assert ssl_context_for(local) is False

    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123456789abcdef")
    on_azure = DatabaseSettings.from_env({"DATABASE_URL": DSN})
    assert on_azure.ssl_mode == "verify-full"
    context = ssl_context_for(on_azure)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_an_explicit_db_ssl_wins_over_the_platform_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123456789abcdef")
    settings = DatabaseSettings.from_env({"DATABASE_URL": DSN, "DB_SSL": "require"})
    assert ssl_context_for(settings) == "require"


def test_settings_are_read_lazily_and_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", DSN)
    clear_settings_cache()
    try:
        first = get_database_settings()
        monkeypatch.setenv("DATABASE_URL", "postgresql://other@127.0.0.1/other")
        assert get_database_settings() is first
        clear_settings_cache()
        assert get_database_settings().database_url == "postgresql://other@127.0.0.1/other"
    finally:
        monkeypatch.undo()
        clear_settings_cache()


# ---------------------------------------------------------------- indexing never needs settings


def test_function_app_imports_and_indexes_with_an_empty_environment() -> None:
    script = (
        "import function_app\n"
        "functions = function_app.app.get_functions()\n"
        "print(len(functions), sorted(f.get_function_name() for f in functions))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "health" in result.stdout


# ---------------------------------------------------------------- documented settings


def test_the_example_local_settings_list_every_contract_setting_and_nothing_unknown() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    values = set(example["Values"])
    assert CONTRACT_SETTINGS <= values, sorted(CONTRACT_SETTINGS - values)
    host_settings = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", *LOCAL_RUN_SETTINGS}
    assert values - host_settings <= setting_names(), sorted(values - host_settings - setting_names())


def test_the_readme_documents_every_setting_the_app_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(name for name in setting_names() if f"`{name}`" not in readme)
    assert missing == []
