"""`POST /api/registrations/{id}/verification`: an admin probes a registration's endpoint over MCP; the result
is stored with the registration, shown in its responses and in the MCP Registry's `_meta`, and approval takes
the verified tool set as the approved one. The MCP servers are real processes on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.host import LocalHostProcess, host_environment
from tests.support.issuer import TestIssuer, bearer
from tests.support.probe_peers import THREE_TOOLS, Peer, connect_once, start_http_peer, start_mcp_server
from tests.support.registrations import assert_error, audit_entries, marker
from tests.support.verification import (
    REGISTRY_KEY,
    approve_tools,
    approved,
    listed_names,
    probe,
    probed,
    registered,
    registration,
    registry_entry,
)


@pytest.fixture(scope="module")
def peers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verification-peers")


@pytest.fixture(scope="module")
def mcp_server(peers_dir: Path) -> Iterator[Peer]:
    peer = start_mcp_server(peers_dir, THREE_TOOLS)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def probing_host(database_url: str, issuer: TestIssuer, log_dir: Path) -> Iterator[LocalHostProcess]:
    """A host that may probe loopback (the test servers), as a local run does."""
    host = LocalHostProcess(
        host_environment(database_url, issuer, PROBE_ALLOW_LOOPBACK="true", PROBE_TIMEOUT_S="5"),
        log_path=log_dir / "probing-host.log",
    )
    yield host
    host.stop()


@pytest.fixture
async def papi(probing_host: LocalHostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with probing_host.client() as client:
        yield client


def own_url(peer: Peer) -> str:
    """The server's URL, made unique to this test (the server ignores the query; registrations need unique URLs)."""
    return f"{peer.url()}?test={uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- probing on demand


async def test_an_admin_probe_answers_verified_with_tools_and_the_registration_then_shows_it(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    assert created["verification"]["status"] == "unverified"
    assert created["verification"]["checked_at"] is None and created["verification"]["tools"] is None

    verification = await probed(papi, admin_token, created["registration_id"])

    assert verification["status"] == "verified"
    assert verification["server_info"] == {"name": "registry-test-server", "version": "3.1.4"}
    assert verification["protocol_version"]
    assert [tool["name"] for tool in verification["tools"]] == ["get_forecast", "get_alerts", "get_history"]
    assert all(tool["fingerprint"].startswith("sha256:") for tool in verification["tools"])
    assert verification["tools_fingerprint"].startswith("sha256:")
    assert verification["approved_tools_fingerprint"] is None
    assert verification["checked_at"]
    shown = (await registration(papi, submitter_token, created["registration_id"]))["verification"]
    assert shown == verification


async def test_a_probe_does_not_change_the_registrations_etag_or_updated_at(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    before = await papi.get(f"/api/registrations/{created['registration_id']}", headers=bearer(submitter_token))

    await probed(papi, admin_token, created["registration_id"])

    after = await papi.get(f"/api/registrations/{created['registration_id']}", headers=bearer(submitter_token))
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json()["updated_at"] == before.json()["updated_at"]


async def test_declared_tools_that_differ_from_the_probed_ones_are_shown_as_a_difference(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    declared = [{"name": "get_forecast"}, {"name": "legacy_report"}]
    created = await registered(papi, submitter_token, own_url(mcp_server), available_tools=declared)

    verification = await probed(papi, admin_token, created["registration_id"])

    difference = {"undeclared": ["get_alerts", "get_history"], "missing": ["legacy_report"]}
    assert verification["declared_difference"] == difference
    shown = await registration(papi, submitter_token, created["registration_id"])
    assert shown["verification"]["declared_difference"] == difference
    assert [tool["name"] for tool in shown["available_tools"]] == ["get_forecast", "legacy_report"]  # not overwritten


async def test_a_non_admin_cannot_probe(
    papi: httpx.AsyncClient, mcp_server: Peer, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    before = len(mcp_server.requests())

    response = await probe(papi, submitter_token, created["registration_id"])

    assert_error(response, 403, "FORBIDDEN")
    assert len(mcp_server.requests()) == before


async def test_probing_an_unknown_registration_is_404(papi: httpx.AsyncClient, admin_token: str) -> None:
    response = await probe(papi, admin_token, str(uuid.uuid4()))

    assert_error(response, 404, "NOT_FOUND")


async def test_a_probe_refused_by_the_address_policy_never_reaches_the_server(
    start_host: Callable[..., LocalHostProcess], peers_dir: Path, admin_token: str, submitter_token: str
) -> None:
    # As deployed: loopback not allowed (the example local settings allow it for local runs).
    host = start_host(PROBE_ALLOW_LOOPBACK="false")
    peer = start_http_peer(peers_dir, "html")
    api = host.client()
    try:
        connect_once(peer)
        assert len(peer.log_lines()) == 1
        created = await registered(api, submitter_token, peer.url(host="localhost") + f"?t={uuid.uuid4().hex}")

        verification = await probed(api, admin_token, created["registration_id"])

        assert verification["status"] == "refused"
        assert verification["detail"] == "the host resolves to a loopback address"
        assert verification["tools"] is None
        assert len(peer.log_lines()) == 1
    finally:
        await api.aclose()
        peer.stop()


# ---------------------------------------------------------------- approval


async def test_approving_a_verified_server_makes_its_tool_set_the_approved_one(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    verification = await probed(papi, admin_token, created["registration_id"])

    decided = await approved(papi, admin_token, created["registration_id"])

    assert decided["verification"]["approved_tools_fingerprint"] == verification["tools_fingerprint"]
    assert decided["verification"]["approved_unverified"] is False
    assert decided["verification"]["tools_approved_at"]
    entry = (await audit_entries(papi, admin_token, registration_id=created["registration_id"], action="Approved"))
    assert entry["results"][0]["metadata"] == {
        "verification": "verified",
        "tools_fingerprint": verification["tools_fingerprint"],
    }


async def test_approving_an_unverified_server_records_that_it_was_unverified(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))

    decided = await approved(papi, admin_token, created["registration_id"])

    assert decided["verification"]["status"] == "unverified"
    assert decided["verification"]["approved_unverified"] is True
    assert decided["verification"]["approved_tools_fingerprint"] is None
    entry = (await audit_entries(papi, admin_token, registration_id=created["registration_id"], action="Approved"))
    assert entry["results"][0]["metadata"] == {"verification": "unverified"}


async def test_the_first_verified_probe_after_an_unverified_approval_becomes_the_approved_tool_set(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    await approved(papi, admin_token, created["registration_id"])

    verification = await probed(papi, admin_token, created["registration_id"])

    assert verification["status"] == "verified"
    assert verification["approved_tools_fingerprint"] == verification["tools_fingerprint"]
    assert verification["approved_unverified"] is True


# ---------------------------------------------------------------- tool-set approval errors


async def test_approving_tools_with_a_fingerprint_other_than_the_probed_one_is_412(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    await probed(papi, admin_token, created["registration_id"])
    await approved(papi, admin_token, created["registration_id"])

    response = await approve_tools(papi, admin_token, created["registration_id"], "sha256:" + "0" * 64)

    assert_error(response, 412, "PRECONDITION_FAILED")


async def test_approving_tools_of_a_registration_that_is_not_approved_is_409(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    verification = await probed(papi, admin_token, created["registration_id"])

    response = await approve_tools(papi, admin_token, created["registration_id"], verification["tools_fingerprint"])

    assert_error(response, 409, "INVALID_STATE_TRANSITION")


async def test_approving_tools_that_no_probe_listed_is_409(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    created = await registered(papi, submitter_token, own_url(mcp_server))
    await approved(papi, admin_token, created["registration_id"])

    response = await approve_tools(papi, admin_token, created["registration_id"], "sha256:" + "a" * 64)

    assert_error(response, 409, "INVALID_STATE_TRANSITION")


async def test_approving_tools_needs_an_admin_a_known_id_and_a_fingerprint(
    papi: httpx.AsyncClient, admin_token: str, submitter_token: str
) -> None:
    fingerprint = "sha256:" + "b" * 64
    unknown = str(uuid.uuid4())

    assert_error(await approve_tools(papi, submitter_token, unknown, fingerprint), 403, "FORBIDDEN")
    assert_error(await approve_tools(papi, admin_token, unknown, fingerprint), 404, "NOT_FOUND")
    assert_error(await approve_tools(papi, admin_token, unknown, "md5:abc"), 422, "VALIDATION_ERROR")


# ---------------------------------------------------------------- the MCP Registry


async def test_the_registry_shows_the_verification_under_its_meta_key_and_filters_on_it(
    papi: httpx.AsyncClient, mcp_server: Peer, admin_token: str, submitter_token: str
) -> None:
    tag = marker()
    verified = await registered(papi, submitter_token, own_url(mcp_server), endpoint_name=f"Verified {tag}")
    unverified = await registered(papi, submitter_token, own_url(mcp_server), endpoint_name=f"Unverified {tag}")
    verification = await probed(papi, admin_token, verified["registration_id"])
    for created in (verified, unverified):
        await approved(papi, admin_token, created["registration_id"])

    entry = (await registry_entry(papi, verified["server_name"])).json()

    meta = entry["server"]["_meta"][REGISTRY_KEY]["verification"]
    assert meta["status"] == "verified"
    assert meta["toolsFingerprint"] == verification["tools_fingerprint"]
    assert meta["checkedAt"][:19] == verification["checked_at"][:19]
    unverified_entry = (await registry_entry(papi, unverified["server_name"])).json()
    assert unverified_entry["server"]["_meta"][REGISTRY_KEY]["verification"] == {"status": "unverified"}
    assert sorted(await listed_names(papi, search=tag)) == sorted([verified["server_name"], unverified["server_name"]])
    assert await listed_names(papi, search=tag, verification="verified") == [verified["server_name"]]
    assert await listed_names(papi, search=tag, verification="unverified") == [unverified["server_name"]]
    assert await listed_names(papi, search=tag, verification="drifted") == []


async def test_an_unknown_verification_filter_is_400(papi: httpx.AsyncClient) -> None:
    response = await papi.get("/api/v0.1/servers", params={"verification": "trusted"})

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_QUERY"
    assert "verification" in response.json()["error"]
