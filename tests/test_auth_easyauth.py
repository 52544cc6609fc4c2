"""The EasyAuth second check over real HTTP.

With App Service authentication off, the `X-MS-CLIENT-PRINCIPAL*` headers are ignored entirely (anyone can
send them). With it on (EASYAUTH_REQUIRED=true, or the platform's WEBSITE_AUTH_ENABLED=True), a request
must carry the principal headers and their principal must be the token's user; anything else, including a
malformed principal, is a 401 and never a 500.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.host import LocalHostProcess, host_environment
from tests.support.issuer import ADMIN_ROLE, TENANT_ID, TestIssuer, bearer

OID_LONG = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_LONG = "http://schemas.microsoft.com/identity/claims/tenantid"
ROLE_LONG = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
OTHER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def encode_principal(principal: Any) -> str:
    return base64.b64encode(json.dumps(principal).encode()).decode("ascii")


def principal_of(oid: str, *, tenant: str = TENANT_ID, roles: tuple[str, ...] = (), long_types: bool = False) -> str:
    oid_type, tid_type, role_type = (OID_LONG, TID_LONG, ROLE_LONG) if long_types else ("oid", "tid", "roles")
    claims = [{"typ": oid_type, "val": oid}, {"typ": tid_type, "val": tenant}, {"typ": "name", "val": "Someone"}]
    claims += [{"typ": role_type, "val": role} for role in roles]
    return encode_principal({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": role_type})


def easyauth_headers(principal_id: str | None, principal: str | None) -> dict[str, str]:
    headers = {"X-MS-CLIENT-PRINCIPAL-IDP": "aad", "X-MS-CLIENT-PRINCIPAL-NAME": "someone@example.com"}
    if principal_id is not None:
        headers["X-MS-CLIENT-PRINCIPAL-ID"] = principal_id
    if principal is not None:
        headers["X-MS-CLIENT-PRINCIPAL"] = principal
    return headers



async def users_with_oid(db: asyncpg.Connection, oid: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM users WHERE entra_id = $1", oid)
    return count


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.fixture(scope="module")
def easyauth_host(database_url: str, issuer: TestIssuer, log_dir: Path) -> Iterator[LocalHostProcess]:
    host = LocalHostProcess(
        host_environment(database_url, issuer, EASYAUTH_REQUIRED="true"), log_path=log_dir / "easyauth-on.log"
    )
    yield host
    host.stop()


@pytest.fixture
async def easyauth_api(easyauth_host: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with easyauth_host.client() as client:
        yield client


# ---------------------------------------------------------------- EasyAuth off: headers ignored entirely


async def test_forged_admin_principal_with_a_user_token_gives_no_admin(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())
    forged = easyauth_headers(oid, principal_of(oid, roles=(ADMIN_ROLE,)))

    signed_in = await api.post("/api/users", headers=bearer(issuer.token(oid=oid)) | forged)
    audit = await api.get("/api/audit-logs", headers=bearer(issuer.token(oid=oid)) | forged)

    assert signed_in.status_code == 201
    assert signed_in.json()["is_admin"] is False
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", oid) is False
    assert audit.status_code == 403


async def test_forged_admin_principal_without_a_token_is_401(api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    oid = str(uuid.uuid4())

    response = await api.post("/api/users", headers=easyauth_headers(oid, principal_of(oid, roles=(ADMIN_ROLE,))))

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


async def test_forged_principal_with_an_invalid_token_is_401(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())
    expired = issuer.token(oid=oid, expires_in=-3600)

    response = await api.post("/api/users", headers=bearer(expired) | easyauth_headers(oid, principal_of(oid)))

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


async def test_principal_of_another_user_is_ignored_when_easyauth_is_off(
    issuer: TestIssuer, api: httpx.AsyncClient
) -> None:
    oid, other = str(uuid.uuid4()), str(uuid.uuid4())

    response = await api.get(
        "/api/users/me", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(other, principal_of(other))
    )

    assert response.status_code == 200
    assert response.json()["entra_id"] == oid


async def test_malformed_principal_is_ignored_when_easyauth_is_off(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    oid = str(uuid.uuid4())

    response = await api.get("/api/users/me", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(oid, "%%%"))

    assert response.status_code == 200
    assert response.json()["entra_id"] == oid


# ---------------------------------------------------------------- EasyAuth on: the principal must be the token's user


async def test_matching_principal_is_accepted(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())

    response = await easyauth_api.post(
        "/api/users", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(oid, principal_of(oid))
    )

    assert response.status_code == 201, response.text
    assert await users_with_oid(db, oid) == 1


async def test_matching_principal_with_long_claim_types_is_accepted(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient
) -> None:
    oid = str(uuid.uuid4())

    response = await easyauth_api.post(
        "/api/users", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(oid, principal_of(oid, long_types=True))
    )

    assert response.status_code == 201, response.text


async def test_missing_principal_headers_are_401(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())

    response = await easyauth_api.post("/api/users", headers=bearer(issuer.token(oid=oid)))

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


@pytest.mark.parametrize(
    "headers_for",
    [
        pytest.param(lambda oid: easyauth_headers(oid, None), id="principal-id-without-principal"),
        pytest.param(lambda oid: easyauth_headers(None, principal_of(oid)), id="principal-without-principal-id"),
        pytest.param(lambda oid: easyauth_headers("", principal_of(oid)), id="empty-principal-id"),
    ],
)
async def test_incomplete_principal_headers_are_401(
    headers_for: Callable[[str], dict[str, str]],
    issuer: TestIssuer,
    easyauth_api: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    oid = str(uuid.uuid4())

    response = await easyauth_api.post("/api/users", headers=bearer(issuer.token(oid=oid)) | headers_for(oid))

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


MALFORMED_PRINCIPALS = [
    pytest.param(lambda oid: "%%%not base64%%%", id="not-base64"),
    pytest.param(lambda oid: "abc", id="bad-base64-padding"),
    pytest.param(lambda oid: base64.b64encode(b"\xff\xfe\xfd").decode(), id="not-utf8"),
    pytest.param(lambda oid: base64.b64encode(b"not json").decode(), id="not-json"),
    pytest.param(lambda oid: encode_principal([{"typ": "oid", "val": oid}]), id="json-array"),
    pytest.param(lambda oid: encode_principal("oid"), id="json-string"),
    pytest.param(lambda oid: encode_principal({"auth_typ": "aad"}), id="no-claims"),
    pytest.param(lambda oid: encode_principal({"claims": {"oid": oid}}), id="claims-not-a-list"),
    pytest.param(lambda oid: encode_principal({"claims": [oid]}), id="claims-not-objects"),
    pytest.param(lambda oid: encode_principal({"claims": [{"typ": "oid", "val": 5}]}), id="claim-value-not-a-string"),
    pytest.param(lambda oid: encode_principal({"claims": []}), id="claims-empty"),
    pytest.param(lambda oid: base64.b64encode(b"[" * 5000).decode(), id="deeply-nested-json"),
]


@pytest.mark.parametrize("principal_for", MALFORMED_PRINCIPALS)
async def test_malformed_principal_is_401_never_500(
    principal_for: Callable[[str], str],
    issuer: TestIssuer,
    easyauth_api: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    oid = str(uuid.uuid4())

    response = await easyauth_api.post(
        "/api/users", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(oid, principal_for(oid))
    )

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


@pytest.mark.parametrize(
    ("principal_id_of", "principal_oid_of", "tenant"),
    [
        pytest.param("other", "other", TENANT_ID, id="principal-of-another-user"),
        pytest.param("other", "self", TENANT_ID, id="principal-id-of-another-user"),
        pytest.param("self", "other", TENANT_ID, id="principal-claims-of-another-user"),
        pytest.param("self", "self", OTHER_TENANT_ID, id="principal-of-another-tenant"),
    ],
)
async def test_principal_that_is_not_the_token_user_is_401(
    principal_id_of: str,
    principal_oid_of: str,
    tenant: str,
    issuer: TestIssuer,
    easyauth_api: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    oid, other = str(uuid.uuid4()), str(uuid.uuid4())
    pick = {"self": oid, "other": other}
    headers = easyauth_headers(pick[principal_id_of], principal_of(pick[principal_oid_of], tenant=tenant))

    response = await easyauth_api.post("/api/users", headers=bearer(issuer.token(oid=oid)) | headers)

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0
    assert await users_with_oid(db, other) == 0


async def test_cached_token_is_still_checked_against_the_principal(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient
) -> None:
    oid, other = str(uuid.uuid4()), str(uuid.uuid4())
    token = issuer.token(oid=oid)
    first = await easyauth_api.get("/api/users/me", headers=bearer(token) | easyauth_headers(oid, principal_of(oid)))

    again_with_other = await easyauth_api.get(
        "/api/users/me", headers=bearer(token) | easyauth_headers(other, principal_of(other))
    )
    again_without = await easyauth_api.get("/api/users/me", headers=bearer(token))

    assert first.status_code == 200
    assert_invalid_token(again_with_other)
    assert_invalid_token(again_without)


async def test_admin_role_in_the_principal_does_not_make_an_admin(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient
) -> None:
    oid = str(uuid.uuid4())
    headers = bearer(issuer.token(oid=oid)) | easyauth_headers(oid, principal_of(oid, roles=(ADMIN_ROLE,)))

    me = await easyauth_api.post("/api/users", headers=headers)
    audit = await easyauth_api.get("/api/audit-logs", headers=headers)

    assert me.status_code == 201
    assert me.json()["is_admin"] is False
    assert audit.status_code == 403


async def test_invalid_token_with_a_matching_principal_is_401(
    issuer: TestIssuer, easyauth_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = str(uuid.uuid4())
    wrong_audience = issuer.token(oid=oid, audience=str(uuid.uuid4()))

    response = await easyauth_api.post(
        "/api/users", headers=bearer(wrong_audience) | easyauth_headers(oid, principal_of(oid))
    )

    assert_invalid_token(response)
    assert await users_with_oid(db, oid) == 0


# ---------------------------------------------------------------- who turns the check on


async def test_platform_auth_enabled_turns_the_check_on(
    issuer: TestIssuer, start_host: Callable[..., LocalHostProcess]
) -> None:
    host = start_host(WEBSITE_AUTH_ENABLED="True")
    oid = str(uuid.uuid4())
    async with host.client() as client:
        without = await client.get("/api/users/me", headers=bearer(issuer.token(oid=oid)))
        with_principal = await client.get(
            "/api/users/me", headers=bearer(issuer.token(oid=oid)) | easyauth_headers(oid, principal_of(oid))
        )

    assert_invalid_token(without)
    assert with_principal.status_code == 200


async def test_easyauth_required_false_overrides_the_platform_flag(
    issuer: TestIssuer, start_host: Callable[..., LocalHostProcess]
) -> None:
    host = start_host(WEBSITE_AUTH_ENABLED="True", EASYAUTH_REQUIRED="false")
    oid = str(uuid.uuid4())
    async with host.client() as client:
        response = await client.get("/api/users/me", headers=bearer(issuer.token(oid=oid)))

    assert response.status_code == 200
