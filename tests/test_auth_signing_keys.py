"""The per-worker signing-key cache, observed from outside: a real host process, a real JWKS on loopback
that counts its fetches, rotation, outages, a concurrent cold start and a flood of unknown kids.

Each test has its own issuer (own keys, own fetch counters) and its own host (own, empty key cache).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from devtools.local_issuer import key_id, new_rsa_key
from tests.support.host import LocalHostProcess
from tests.support.issuer import TENANT_ID, TestIssuer, bearer

OTHER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

HostStarter = Callable[..., LocalHostProcess]


class BoundKeyIssuer(TestIssuer):
    """A test issuer whose JWKS binds keys to an issuer, as Entra's v2 key set does (`issuer` member)."""

    def __init__(self) -> None:
        self.key_issuers: dict[str, str] = {}
        super().__init__()

    def jwks(self) -> dict[str, Any]:
        document = super().jwks()
        for entry in document["keys"]:
            if entry["kid"] in self.key_issuers:
                entry["issuer"] = self.key_issuers[entry["kid"]]
        return document


@pytest.fixture
def own_issuer() -> Iterator[TestIssuer]:
    issuer = TestIssuer()
    yield issuer
    issuer.close()


@pytest.fixture
def bound_issuer() -> Iterator[BoundKeyIssuer]:
    issuer = BoundKeyIssuer()
    yield issuer
    issuer.close()


def host_for(start_host: HostStarter, issuer: TestIssuer, **env: str) -> LocalHostProcess:
    return start_host(ENTRA_OPENID_CONFIG_URL=issuer.openid_config_url, **env)


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[LocalHostProcess], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(host: LocalHostProcess) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=host.base_url,
            timeout=60.0,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()



async def sign_in(client: httpx.AsyncClient, token: str) -> int:
    response = await client.post("/api/users", headers=bearer(token))
    return response.status_code


# ---------------------------------------------------------------- rotation


async def test_rotated_key_is_accepted_after_exactly_one_refetch(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    assert await sign_in(client, own_issuer.token()) == 201
    assert own_issuer.jwks_fetches == 1

    own_issuer.rotate()
    first_with_new_key = await sign_in(client, own_issuer.token())
    fetches_after_rotation = own_issuer.jwks_fetches
    second_with_new_key = await sign_in(client, own_issuer.token())

    assert (first_with_new_key, second_with_new_key) == (201, 201)
    assert fetches_after_rotation == 2
    assert own_issuer.jwks_fetches == 2


async def test_old_key_still_published_after_rotation_is_accepted_without_refetch(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    old_key = own_issuer.signing_key
    own_issuer.rotate()
    assert await sign_in(client, own_issuer.token()) == 201
    fetches = own_issuer.jwks_fetches

    status = await sign_in(client, own_issuer.token(key=old_key))

    assert status == 201
    assert own_issuer.jwks_fetches == fetches


async def test_key_not_yet_published_is_rejected_then_accepted_once_published(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    assert await sign_in(client, own_issuer.token()) == 201
    unpublished = new_rsa_key()
    oid = str(uuid.uuid4())

    before = await sign_in(client, own_issuer.token(key=unpublished, oid=oid))
    with own_issuer._lock:
        own_issuer.published.append(unpublished)
    after = await sign_in(client, own_issuer.token(key=unpublished, oid=oid))

    assert (before, after) == (401, 201)


# ---------------------------------------------------------------- outages


async def test_cached_keys_are_used_while_the_key_endpoint_is_down(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    assert await sign_in(client, own_issuer.token()) == 201

    own_issuer.down = True
    statuses = [await sign_in(client, own_issuer.token()) for _ in range(3)]

    assert statuses == [201, 201, 201]


async def test_unknown_kid_while_the_key_endpoint_is_down_is_401_and_cached_keys_keep_working(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    known_key = own_issuer.signing_key
    assert await sign_in(client, own_issuer.token()) == 201

    own_issuer.down = True
    own_issuer.rotate()
    attempts_before = own_issuer.config_fetches + own_issuer.jwks_fetches
    with_unknown_kid = await client.post("/api/users", headers=bearer(own_issuer.token()))
    with_known_kid = await sign_in(client, own_issuer.token(key=known_key))

    assert with_unknown_kid.status_code == 401
    assert with_unknown_kid.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert own_issuer.config_fetches + own_issuer.jwks_fetches > attempts_before  # it did try to refetch
    assert with_known_kid == 201


async def test_no_keys_at_start_is_401_not_500_and_recovers_when_the_endpoint_answers(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    own_issuer.down = True
    while_down = await client.post("/api/users", headers=bearer(own_issuer.token()))

    own_issuer.down = False
    after_recovery = await sign_in(client, own_issuer.token())

    assert while_down.status_code == 401
    assert while_down.json()["error_code"] == "UNAUTHENTICATED"
    assert after_recovery == 201


# ---------------------------------------------------------------- concurrency and floods


async def test_fifty_concurrent_first_requests_fetch_the_keys_once(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer))
    tokens = [own_issuer.token() for _ in range(50)]
    assert own_issuer.jwks_fetches == 0

    statuses = await asyncio.gather(*(sign_in(client, token) for token in tokens))

    assert statuses == [201] * 50
    assert own_issuer.config_fetches == 1
    assert own_issuer.jwks_fetches == 1


async def test_fifty_concurrent_first_requests_on_the_shared_issuer_fetch_the_keys_once(
    issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    # The same with the session's issuer: its counters are shared, so reset them and use a fresh host.
    client = client_for(start_host())
    tokens = [issuer.token() for _ in range(50)]
    issuer.reset_counts()

    statuses = await asyncio.gather(*(sign_in(client, token) for token in tokens))

    assert statuses == [201] * 50
    assert issuer.jwks_fetches == 1


async def test_unknown_kid_flood_is_bounded_by_the_cooldown(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer, JWKS_UNKNOWN_KID_COOLDOWN_S="30"))
    assert await sign_in(client, own_issuer.token()) == 201
    own_issuer.reset_counts()

    statuses = [await sign_in(client, own_issuer.token(kid=uuid.uuid4().hex)) for _ in range(20)]

    assert statuses == [401] * 20
    assert own_issuer.jwks_fetches <= 1


async def test_concurrent_unknown_kid_flood_on_a_cold_host_is_bounded_by_the_cooldown(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer, JWKS_UNKNOWN_KID_COOLDOWN_S="30"))
    tokens = [own_issuer.token(kid=uuid.uuid4().hex) for _ in range(20)]

    statuses = await asyncio.gather(*(sign_in(client, token) for token in tokens))

    assert statuses == [401] * 20
    assert own_issuer.jwks_fetches <= 2  # the first load, and at most one unknown-kid refetch


async def test_without_a_cooldown_every_unknown_kid_refetches(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    # Negative control for the flood tests: the counter does see refetches when nothing throttles them.
    client = client_for(host_for(start_host, own_issuer, JWKS_UNKNOWN_KID_COOLDOWN_S="0"))
    assert await sign_in(client, own_issuer.token()) == 201
    own_issuer.reset_counts()

    statuses = [await sign_in(client, own_issuer.token(kid=uuid.uuid4().hex)) for _ in range(5)]

    assert statuses == [401] * 5
    assert own_issuer.jwks_fetches == 5


async def test_valid_token_is_accepted_right_after_an_unknown_kid_flood(
    own_issuer: TestIssuer, start_host: HostStarter, client_for: Callable[[LocalHostProcess], httpx.AsyncClient]
) -> None:
    client = client_for(host_for(start_host, own_issuer, JWKS_UNKNOWN_KID_COOLDOWN_S="30"))
    for _ in range(20):
        await sign_in(client, own_issuer.token(kid=uuid.uuid4().hex))

    assert await sign_in(client, own_issuer.token()) == 201


# ---------------------------------------------------------------- keys bound to an issuer (matrix #17)


async def test_key_bound_to_the_tenant_independent_issuer_template_is_accepted(
    bound_issuer: BoundKeyIssuer,
    start_host: HostStarter,
    client_for: Callable[[LocalHostProcess], httpx.AsyncClient],
) -> None:
    bound_issuer.key_issuers[key_id(bound_issuer.signing_key)] = "https://login.microsoftonline.com/{tenantid}/v2.0"
    client = client_for(host_for(start_host, bound_issuer))

    v2 = await sign_in(client, bound_issuer.token(version="2.0"))
    v1 = await sign_in(client, bound_issuer.token(version="1.0"))

    assert (v2, v1) == (201, 201)


async def test_key_bound_to_another_tenant_is_rejected_for_our_issuer(
    bound_issuer: BoundKeyIssuer,
    start_host: HostStarter,
    client_for: Callable[[LocalHostProcess], httpx.AsyncClient],
) -> None:
    foreign_key = new_rsa_key()
    with bound_issuer._lock:
        bound_issuer.published.append(foreign_key)
    bound_issuer.key_issuers[key_id(foreign_key)] = f"https://login.microsoftonline.com/{OTHER_TENANT_ID}/v2.0"
    client = client_for(host_for(start_host, bound_issuer))

    response = await client.post("/api/users", headers=bearer(bound_issuer.token(key=foreign_key, tenant_id=TENANT_ID)))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
