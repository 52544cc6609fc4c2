"""DATABASE_AUTH=entra: the app's managed identity signs in to PostgreSQL with a fresh Entra token as the
password of every new connection. The credential is faked at its edge (its get_token); the pool and the
connections are real."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import asyncpg
import pytest
from azure.identity import ManagedIdentityCredential

from shared import db_connect, db_entra
from shared.settings import DatabaseSettings
from tests.support.pgbouncer import host_settings as pgbouncer_settings

POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


@dataclass
class FakeAccessToken:
    token: str


@dataclass
class FakeCredential:
    """Stands in for azure-identity's ManagedIdentityCredential: hands out numbered tokens."""

    scopes: list[tuple[str, ...]] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    def get_token(self, *scopes: str) -> FakeAccessToken:
        self.scopes.append(scopes)
        self.threads.append(threading.get_ident())
        return FakeAccessToken(f"entra-token-{len(self.scopes)}")


def entra_settings(database_url: str, **overrides: str) -> DatabaseSettings:
    return DatabaseSettings.from_env(
        {
            "DATABASE_URL": database_url,
            "DATABASE_AUTH": "entra",
            "DB_SSL": "disable",
            **pgbouncer_settings(),
            **overrides,
        }
    )


async def test_the_token_is_requested_for_the_postgres_scope_off_the_event_loop(database_url: str) -> None:
    credential = FakeCredential()
    provider = db_entra.entra_token_provider(entra_settings(database_url), credential)

    password = await provider()

    assert password == "entra-token-1"
    assert credential.scopes == [(POSTGRES_SCOPE,)]
    assert credential.threads[0] != threading.get_ident()


async def test_a_sovereign_cloud_scope_comes_from_the_setting(database_url: str) -> None:
    credential = FakeCredential()
    scope = "https://ossrdbms-aad.database.usgovcloudapi.net/.default"
    provider = db_entra.entra_token_provider(
        entra_settings(database_url, DATABASE_ENTRA_TOKEN_SCOPE=scope), credential
    )

    await provider()

    assert credential.scopes == [(scope,)]


async def test_every_new_pool_connection_gets_a_fresh_token(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = FakeCredential()
    monkeypatch.setattr(db_entra, "default_credential", lambda settings: credential)
    options = db_connect.pool_options(entra_settings(database_url, DB_POOL_MIN_SIZE="2", DB_POOL_MAX_SIZE="2"))

    pool = await asyncpg.create_pool(**options)
    try:
        async with pool.acquire() as first, pool.acquire() as second:
            answers = [await first.fetchval("SELECT 1"), await second.fetchval("SELECT 1")]
    finally:
        await pool.close()

    assert answers == [1, 1]
    assert len(credential.scopes) == 2
    assert set(credential.scopes) == {(POSTGRES_SCOPE,)}


def test_password_settings_use_no_token_provider(database_url: str) -> None:
    settings = DatabaseSettings.from_env({"DATABASE_URL": database_url, "DATABASE_AUTH": "password"})

    assert "password" not in db_connect.pool_options(settings)


def test_the_default_credential_is_the_configured_managed_identity(database_url: str) -> None:
    settings = entra_settings(database_url, AZURE_CLIENT_ID="11111111-2222-3333-4444-555555555555")

    credential = db_entra.default_credential(settings)

    assert isinstance(credential, ManagedIdentityCredential)
