"""Passwordless PostgreSQL sign-in with the app's managed identity (DATABASE_AUTH=entra).

asyncpg calls the password provider for every new connection, so each connection gets a fresh token;
azure-identity caches tokens and refreshes them before they expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from shared.settings import DatabaseSettings

# What asyncpg calls for the password of every new connection.
PasswordProvider = Callable[[], Awaitable[str]]


class _AccessToken(Protocol):
    token: str


class TokenCredential(Protocol):
    def get_token(self, *scopes: str) -> _AccessToken: ...


def default_credential(settings: DatabaseSettings) -> TokenCredential:
    from azure.identity import ManagedIdentityCredential

    credential: TokenCredential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return credential


def entra_token_provider(
    settings: DatabaseSettings, credential: TokenCredential | None = None
) -> PasswordProvider:
    chosen = credential if credential is not None else default_credential(settings)

    async def token_as_password() -> str:
        # azure-identity is synchronous (an HTTP call to the identity endpoint): keep it off the event loop.
        access_token = await asyncio.to_thread(chosen.get_token, settings.entra_token_scope)
        return access_token.token

    return token_as_password
