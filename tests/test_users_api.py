"""Users over real HTTP and a real database: sign-in creates the caller's row once, refreshes it only when
the token's profile changed, and mirrors admin (app role or admin group) from every new token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.local_issuer import key_id, new_rsa_key
from tests.support.host import LocalHostProcess, host_environment
from tests.support.issuer import ADMIN_GROUP_ID, ADMIN_ROLE, TestIssuer, bearer

USER_FIELDS = {"user_id", "entra_id", "email", "display_name", "is_admin", "created_at", "updated_at"}



def new_oid() -> str:
    return str(uuid.uuid4())


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


class Tokens:
    """Fresh tokens for one user: every call returns a different token string (so none is served from
    the verified-token cache), with the same identity and whatever profile the call asks for."""

    def __init__(self, issuer: TestIssuer, oid: str) -> None:
        self.issuer, self.oid, self._minted = issuer, oid, 0

    def __call__(self, **claims: Any) -> str:
        self._minted += 1
        claims.setdefault("email", "person@example.com")
        claims.setdefault("name", "Person")
        return self.issuer.token(oid=self.oid, expires_in=3600 + self._minted, **claims)


async def user_row(db: asyncpg.Connection, oid: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT user_id, email, display_name, is_admin, created_at, updated_at, xmin::text AS xmin"
        " FROM users WHERE entra_id = $1",
        oid,
    )


async def count_users(db: asyncpg.Connection, oid: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM users WHERE entra_id = $1", oid)
    return count


@pytest.fixture(scope="module")
def group_admin_host(database_url: str, issuer: TestIssuer, log_dir: Path) -> Iterator[LocalHostProcess]:
    host = LocalHostProcess(
        host_environment(database_url, issuer, ENTRA_ADMIN_GROUP_ID=ADMIN_GROUP_ID),
        log_path=log_dir / "admin-group.log",
    )
    yield host
    host.stop()


@pytest.fixture
async def group_api(group_admin_host: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with group_admin_host.client() as client:
        yield client


# ---------------------------------------------------------------- POST /api/users


async def test_first_sign_in_is_201_with_the_callers_record(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid, email = new_oid(), new_email()

    response = await api.post("/api/users", headers=bearer(issuer.token(oid=oid, email=email, name="Ada Lovelace")))

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert (body["entra_id"], body["email"], body["display_name"], body["is_admin"]) == (
        oid,
        email,
        "Ada Lovelace",
        False,
    )
    row = await user_row(db, oid)
    assert row is not None
    assert str(row["user_id"]) == body["user_id"]


async def test_sign_in_of_a_known_user_is_200_with_the_same_record(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    tokens = Tokens(issuer, new_oid())
    first = await api.post("/api/users", headers=bearer(tokens()))

    second = await api.post("/api/users", headers=bearer(tokens()))

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()


async def test_repeated_sign_in_with_the_same_token_is_200(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    token = issuer.token()
    first = await api.post("/api/users", headers=bearer(token))

    second = await api.post("/api/users", headers=bearer(token))

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["user_id"] == first.json()["user_id"]


async def test_sign_in_after_a_first_request_elsewhere_is_200(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = new_oid()
    me = await api.get("/api/users/me", headers=bearer(issuer.token(oid=oid)))

    sign_in = await api.post("/api/users", headers=bearer(issuer.token(oid=oid, expires_in=1800)))

    assert me.status_code == 200
    assert sign_in.status_code == 200
    assert sign_in.json()["user_id"] == me.json()["user_id"]
    assert await count_users(db, oid) == 1


async def test_two_hundred_concurrent_first_requests_create_exactly_one_user(
    issuer: TestIssuer, api_host: LocalHostProcess, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())
    headers = [bearer(tokens()) for _ in range(200)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with api_host.client(timeout=60.0, limits=limits) as client:
        responses = await asyncio.gather(*(client.post("/api/users", headers=h) for h in headers))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 199 + [201], {response.status_code: response.text for response in responses}
    assert len({response.json()["user_id"] for response in responses}) == 1
    assert await count_users(db, tokens.oid) == 1


# ---------------------------------------------------------------- GET /api/users/me and /api/users/{id}


async def test_get_me_returns_the_callers_record(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    oid, email = new_oid(), new_email()

    response = await api.get("/api/users/me", headers=bearer(issuer.token(oid=oid, email=email, name="Grace")))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert (body["entra_id"], body["email"], body["display_name"]) == (oid, email, "Grace")


async def test_v1_token_email_comes_from_upn(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    email = new_email()

    response = await api.get("/api/users/me", headers=bearer(issuer.token(version="1.0", email=email)))

    assert response.status_code == 200
    assert response.json()["email"] == email


async def test_email_claim_wins_over_preferred_username(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    email = new_email()
    token = issuer.token(email="login-name@example.com", extra={"email": email})

    response = await api.get("/api/users/me", headers=bearer(token))

    assert response.json()["email"] == email


async def test_get_user_by_id_returns_that_users_record(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    other_oid = new_oid()
    other = await api.post("/api/users", headers=bearer(issuer.token(oid=other_oid, name="Other")))
    user_id = other.json()["user_id"]

    response = await api.get(f"/api/users/{user_id}", headers=bearer(issuer.token()))

    assert response.status_code == 200
    assert response.json() == other.json()


async def test_get_unknown_user_id_is_404(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    response = await api.get(f"/api/users/{uuid.uuid4()}", headers=bearer(issuer.token()))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


@pytest.mark.parametrize("user_id", ["not-a-guid", "12345", "00000000-0000-0000-0000-00000000000g"])
async def test_get_user_with_a_non_guid_id_is_404(user_id: str, issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    response = await api.get(f"/api/users/{user_id}", headers=bearer(issuer.token()))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


# ---------------------------------------------------------------- refreshed only when the profile changed


@pytest.mark.parametrize(
    ("changed", "column", "expected"),
    [
        pytest.param({"email": "renamed@example.com"}, "email", "renamed@example.com", id="email"),
        pytest.param({"name": "New Name"}, "display_name", "New Name", id="name"),
        pytest.param({"admin_role": ADMIN_ROLE}, "is_admin", True, id="admin"),
    ],
)
async def test_user_row_is_refreshed_when_the_profile_changed(
    changed: dict[str, Any],
    column: str,
    expected: object,
    issuer: TestIssuer,
    api: httpx.AsyncClient,
    db: asyncpg.Connection,
) -> None:
    tokens = Tokens(issuer, new_oid())
    assert (await api.post("/api/users", headers=bearer(tokens()))).status_code == 201
    before = await user_row(db, tokens.oid)

    response = await api.post("/api/users", headers=bearer(tokens(**changed)))

    after = await user_row(db, tokens.oid)
    assert before is not None and after is not None
    assert response.status_code == 200
    assert response.json()[column] == expected
    assert after[column] == expected
    assert after["xmin"] != before["xmin"]
    assert after["updated_at"] > before["updated_at"]
    assert after["created_at"] == before["created_at"]


async def test_user_row_is_not_written_when_nothing_changed(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())
    assert (await api.post("/api/users", headers=bearer(tokens()))).status_code == 201
    before = await user_row(db, tokens.oid)

    responses = [await api.get("/api/users/me", headers=bearer(tokens())) for _ in range(3)]
    responses.append(await api.post("/api/users", headers=bearer(tokens())))

    after = await user_row(db, tokens.oid)
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    assert before is not None and after is not None
    assert after["xmin"] == before["xmin"]
    assert after["updated_at"] == before["updated_at"]


# ---------------------------------------------------------------- admin: app role, group, overage, demotion


async def test_admin_app_role_makes_an_admin(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())

    me = await api.post("/api/users", headers=bearer(tokens(admin_role=ADMIN_ROLE)))
    audit = await api.get("/api/audit-logs", headers=bearer(tokens(admin_role=ADMIN_ROLE)))

    assert me.json()["is_admin"] is True
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", tokens.oid) is True
    assert audit.status_code == 200


async def test_other_app_roles_do_not_make_an_admin(issuer: TestIssuer, api: httpx.AsyncClient) -> None:
    token = issuer.token(roles=["Reader", ADMIN_ROLE.lower(), f"{ADMIN_ROLE}s"])

    me = await api.post("/api/users", headers=bearer(token))

    assert me.json()["is_admin"] is False


async def test_admin_group_makes_an_admin_when_configured(
    issuer: TestIssuer, group_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())

    me = await group_api.post("/api/users", headers=bearer(tokens(groups=[str(uuid.uuid4()), ADMIN_GROUP_ID])))
    audit = await group_api.get("/api/audit-logs", headers=bearer(tokens(groups=[ADMIN_GROUP_ID])))

    assert me.json()["is_admin"] is True
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", tokens.oid) is True
    assert audit.status_code == 200


async def test_admin_group_id_matches_case_insensitively(issuer: TestIssuer, group_api: httpx.AsyncClient) -> None:
    me = await group_api.post("/api/users", headers=bearer(issuer.token(groups=[ADMIN_GROUP_ID.upper()])))

    assert me.json()["is_admin"] is True


async def test_other_groups_do_not_make_an_admin(issuer: TestIssuer, group_api: httpx.AsyncClient) -> None:
    me = await group_api.post("/api/users", headers=bearer(issuer.token(groups=[str(uuid.uuid4())])))

    assert me.json()["is_admin"] is False


async def test_admin_group_membership_is_ignored_when_no_group_is_configured(
    issuer: TestIssuer, api: httpx.AsyncClient
) -> None:
    me = await api.post("/api/users", headers=bearer(issuer.token(groups=[ADMIN_GROUP_ID])))

    assert me.json()["is_admin"] is False


async def test_group_overage_is_accepted_but_not_treated_as_membership(
    issuer: TestIssuer, group_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    oid = new_oid()
    overage = {
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {
            "src1": {"endpoint": f"https://graph.windows.net/{ADMIN_GROUP_ID}/users/{oid}/getMemberObjects"}
        },
    }
    token = issuer.token(oid=oid, extra=overage)

    me = await group_api.post("/api/users", headers=bearer(token))
    audit = await group_api.get("/api/audit-logs", headers=bearer(token))

    assert me.status_code == 201
    assert me.json()["is_admin"] is False
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", oid) is False
    assert audit.status_code == 403


async def test_removing_the_admin_role_demotes_on_the_next_request(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())
    admin_token = tokens(admin_role=ADMIN_ROLE)
    assert (await api.get("/api/audit-logs", headers=bearer(admin_token))).status_code == 200

    demoted = await api.get("/api/audit-logs", headers=bearer(tokens()))

    assert demoted.status_code == 403
    assert demoted.json()["error_code"] == "FORBIDDEN"
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", tokens.oid) is False


async def test_adding_the_admin_role_promotes_on_the_next_request(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    tokens = Tokens(issuer, new_oid())
    assert (await api.get("/api/audit-logs", headers=bearer(tokens()))).status_code == 403

    promoted = await api.get("/api/audit-logs", headers=bearer(tokens(admin_role=ADMIN_ROLE)))

    assert promoted.status_code == 200
    assert await db.fetchval("SELECT is_admin FROM users WHERE entra_id = $1", tokens.oid) is True


# ---------------------------------------------------------------- admin-only endpoints


ADMIN_ONLY = [
    pytest.param("GET", "/api/audit-logs", None, id="list-audit-logs"),
    pytest.param("PATCH", "/api/registrations/{id}/status", {"status": "Approved"}, id="decide-registration"),
    pytest.param("DELETE", "/api/registrations/{id}", None, id="delete-registration"),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_non_admin_on_an_admin_endpoint_is_403(
    method: str, path: str, body: dict[str, Any] | None, issuer: TestIssuer, api: httpx.AsyncClient
) -> None:
    url = path.format(id=uuid.uuid4())

    response = await api.request(method, url, json=body, headers=bearer(issuer.token()))

    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "FORBIDDEN"


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_invalid_token_on_an_admin_endpoint_is_401_not_403(
    method: str, path: str, body: dict[str, Any] | None, issuer: TestIssuer, api: httpx.AsyncClient
) -> None:
    url = path.format(id=uuid.uuid4())
    forged_admin = issuer.token(admin_role=ADMIN_ROLE, key=new_rsa_key(), kid=key_id(issuer.signing_key))

    response = await api.request(method, url, json=body, headers=bearer(forged_admin))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# ---------------------------------------------------------------- the verified-token cache


async def test_repeated_requests_with_the_same_token_skip_the_user_upsert(
    issuer: TestIssuer, api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    # The row is changed behind the app's back: a request that ran the upsert would put the token's name
    # back, so an unchanged row proves the same token was served from the verified-token cache.
    tokens = Tokens(issuer, new_oid())
    token = tokens(name="Token Name")
    assert (await api.get("/api/users/me", headers=bearer(token))).status_code == 200
    await db.execute("UPDATE users SET display_name = 'Changed in DB' WHERE entra_id = $1", tokens.oid)

    same_token = await api.get("/api/users/me", headers=bearer(token))
    new_token = await api.get("/api/users/me", headers=bearer(tokens(name="Token Name")))

    assert same_token.json()["display_name"] == "Changed in DB"
    assert new_token.json()["display_name"] == "Token Name"
