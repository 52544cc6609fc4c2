"""The local run without a tenant: the host serves its own OpenID issuer on loopback, writes a user and an
admin token to its tokens file (never to the log), and accepts tokens minted by `python -m devtools.local_issuer` through the same validation path
as Entra tokens. An issuer override that is not loopback is refused, naming the setting.

The host here gets no ENTRA_* settings at all (tests/support/host.py strips them from the inherited
environment), so it configures the local issuer itself; it and the CLI share the default key file
`.local/issuer-key.pem`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from devtools.local_issuer import DEFAULT_KEY_FILE, ISSUER_PATH, LOCAL_CLIENT_ID, LOCAL_TENANT_ID, new_rsa_key
from devtools.local_setup import LOCAL_ADMIN_OID, LOCAL_USER_OID
from tests.support.host import ROOT, LocalHostProcess
from tests.support.issuer import bearer

V1_ISSUER = f"https://sts.windows.net/{LOCAL_TENANT_ID}/"
V2_ISSUER = f"https://login.microsoftonline.com/{LOCAL_TENANT_ID}/v2.0"



def cli_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(("ENTRA_", "LOCAL_ISSUER"))}


def mint(*args: str) -> str:
    """Run the token-minting CLI as a developer would; its last output line is the token."""
    result = subprocess.run(
        [sys.executable, "-m", "devtools.local_issuer", *args],
        cwd=ROOT,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def new_email() -> str:
    return f"dev-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="module")
def local_run(database_url: str, log_dir: Path) -> Iterator[LocalHostProcess]:
    """`python -m devtools.local_host` with a database and nothing else: no tenant, no issuer override (its
    tokens file is this session's, so concurrent sessions do not overwrite each other's)."""
    env = {"DATABASE_URL": database_url, "DB_SSL": "disable", "LOCAL_TOKENS_FILE": str(log_dir / "tokens.env")}
    host = LocalHostProcess(env, log_path=log_dir / "local-run.log")
    yield host
    host.stop()


@pytest.fixture
async def local_api(local_run: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with local_run.client() as client:
        yield client


def written_token(host: LocalHostProcess, name: str) -> str:
    tokens_file = host.log_path.parent / "tokens.env"
    found = re.search(rf"^{name}=(\S+)$", tokens_file.read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None, f"{name} not written by the local run"
    return found.group(1)


# ---------------------------------------------------------------- the local run


async def test_local_run_serves_its_issuer_documents_on_loopback(
    local_run: LocalHostProcess, local_api: httpx.AsyncClient
) -> None:
    config = (await local_api.get(f"{ISSUER_PATH}/v2.0/.well-known/openid-configuration")).json()
    jwks_path = config["jwks_uri"].removeprefix(local_run.base_url)
    keys = (await local_api.get(jwks_path)).json()["keys"]

    assert config["jwks_uri"].startswith(f"http://127.0.0.1:{local_run.port}/")
    assert [key["kid"] for key in keys] == [jwt.get_unverified_header(mint())["kid"]]
    assert all("d" not in key for key in keys)  # public material only


def test_local_run_keeps_its_tokens_out_of_the_log_in_an_owner_only_file(local_run: LocalHostProcess) -> None:
    tokens_file = local_run.log_path.parent / "tokens.env"
    tokens = [written_token(local_run, name) for name in ("USER_TOKEN", "ADMIN_TOKEN")]
    logs = local_run.logs()

    assert tokens_file.stat().st_mode & 0o077 == 0
    assert str(tokens_file) in logs  # the log says where they are
    assert not any(token in logs or token.split(".")[2] in logs for token in tokens)


async def test_local_run_writes_a_user_token_it_accepts(
    local_run: LocalHostProcess, local_api: httpx.AsyncClient
) -> None:
    token = written_token(local_run, "USER_TOKEN")

    me = await local_api.get("/api/users/me", headers=bearer(token))
    audit = await local_api.get("/api/audit-logs", headers=bearer(token))

    assert me.status_code == 200, me.text
    assert (me.json()["entra_id"], me.json()["is_admin"]) == (LOCAL_USER_OID, False)
    assert audit.status_code == 403


async def test_local_run_writes_an_admin_token_it_accepts(
    local_run: LocalHostProcess, local_api: httpx.AsyncClient
) -> None:
    token = written_token(local_run, "ADMIN_TOKEN")

    me = await local_api.get("/api/users/me", headers=bearer(token))
    audit = await local_api.get("/api/audit-logs", headers=bearer(token))

    assert me.status_code == 200, me.text
    assert (me.json()["entra_id"], me.json()["is_admin"]) == (LOCAL_ADMIN_OID, True)
    assert audit.status_code == 200


# ---------------------------------------------------------------- the CLI


async def test_cli_mints_a_v2_token_by_default_that_the_local_run_accepts(
    local_api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    email = new_email()

    token = mint("--email", email, "--name", "Dev Person")

    claims = claims_of(token)
    assert (claims["iss"], claims["aud"], claims["ver"], claims["tid"]) == (
        V2_ISSUER,
        LOCAL_CLIENT_ID,
        "2.0",
        LOCAL_TENANT_ID,
    )
    response = await local_api.post("/api/users", headers=bearer(token))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["entra_id"], body["email"], body["display_name"], body["is_admin"]) == (
        claims["oid"],
        email,
        "Dev Person",
        False,
    )
    assert await db.fetchval("SELECT count(*) FROM users WHERE entra_id = $1", claims["oid"]) == 1


async def test_cli_mints_a_v1_token_that_the_local_run_accepts(local_api: httpx.AsyncClient) -> None:
    email = new_email()

    token = mint("--token-version", "1", "--email", email)

    claims = claims_of(token)
    assert (claims["iss"], claims["aud"], claims["ver"], claims["upn"]) == (
        V1_ISSUER,
        f"api://{LOCAL_CLIENT_ID}",
        "1.0",
        email,
    )
    response = await local_api.post("/api/users", headers=bearer(token))
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email


async def test_cli_admin_token_is_an_admin_on_the_local_run(local_api: httpx.AsyncClient) -> None:
    token = mint("--admin", "--email", new_email())

    me = await local_api.post("/api/users", headers=bearer(token))
    audit = await local_api.get("/api/audit-logs", headers=bearer(token))

    assert claims_of(token)["roles"] == ["Admin"]
    assert me.json()["is_admin"] is True
    assert audit.status_code == 200


async def test_cli_expires_in_sets_the_lifetime_and_the_token_is_accepted(local_api: httpx.AsyncClient) -> None:
    token = mint("--expires-in", "120", "--email", new_email())

    response = await local_api.post("/api/users", headers=bearer(token))

    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 120
    assert response.status_code == 201


async def test_cli_token_that_already_expired_is_rejected_by_the_local_run(local_api: httpx.AsyncClient) -> None:
    token = mint("--expires-in=-3600", "--email", new_email())

    response = await local_api.post("/api/users", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_cli_oid_is_derived_from_the_email_so_a_developer_keeps_one_identity(
    local_api: httpx.AsyncClient,
) -> None:
    email = new_email()

    first = await local_api.post("/api/users", headers=bearer(mint("--email", email)))
    second = await local_api.post("/api/users", headers=bearer(mint("--email", email, "--expires-in", "600")))

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["user_id"] == second.json()["user_id"]


async def test_cli_explicit_oid_is_the_user_identity(local_api: httpx.AsyncClient) -> None:
    oid = str(uuid.uuid4())

    response = await local_api.post("/api/users", headers=bearer(mint("--oid", oid, "--email", new_email())))

    assert response.status_code == 201
    assert response.json()["entra_id"] == oid


async def test_local_token_resigned_with_another_key_is_rejected(local_api: httpx.AsyncClient) -> None:
    genuine = mint("--admin", "--email", new_email())
    kid = jwt.get_unverified_header(genuine)["kid"]
    forged = jwt.encode(claims_of(genuine), new_rsa_key(), algorithm="RS256", headers={"kid": kid, "typ": "JWT"})

    response = await local_api.get("/api/audit-logs", headers=bearer(forged))

    assert response.status_code == 401


async def test_host_configured_for_a_tenant_serves_no_local_issuer_and_refuses_local_tokens(
    api: httpx.AsyncClient,
) -> None:
    documents = await api.get(f"{ISSUER_PATH}/v2.0/.well-known/openid-configuration")
    response = await api.post("/api/users", headers=bearer(mint("--admin", "--email", new_email())))

    assert documents.status_code == 404
    assert response.status_code == 401


def test_cli_and_local_run_share_the_default_key_file(local_run: LocalHostProcess) -> None:
    assert DEFAULT_KEY_FILE == ROOT / ".local" / "issuer-key.pem"
    assert DEFAULT_KEY_FILE.exists()
    assert DEFAULT_KEY_FILE.stat().st_mode & 0o077 == 0  # private key readable by its owner only


# ---------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    "url",
    [
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration",
        "http://10.0.0.5/.well-known/openid-configuration",
        "https://127.0.0.1.nip.io/.well-known/openid-configuration",
    ],
)
def test_non_loopback_issuer_override_is_refused_naming_the_setting(url: str, database_url: str, log_dir: Path) -> None:
    env = {
        "DATABASE_URL": database_url,
        "DB_SSL": "disable",
        "ENTRA_TENANT_ID": LOCAL_TENANT_ID,
        "ENTRA_CLIENT_ID": LOCAL_CLIENT_ID,
        "ENTRA_OPENID_CONFIG_URL": url,
    }

    with pytest.raises(RuntimeError, match="local host exited") as refused:
        LocalHostProcess(env, log_path=log_dir / f"refused-{uuid.uuid4().hex[:8]}.log").stop()

    assert "ENTRA_OPENID_CONFIG_URL" in str(refused.value)
    assert "loopback" in str(refused.value)
