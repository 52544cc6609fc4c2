"""The probe speaks MCP with the SDK's client to real servers on loopback (each its own process), records
every tool with its fingerprint, and turns every other answer into one clear outcome without being turned
against the service (SSRF)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.fingerprints import tool_fingerprint, tool_set_fingerprint
from shared.probe import probe_endpoint
from shared.probe_network import AddressPolicy
from shared.settings import ProbeSettings
from tests.support.host import ROOT
from tests.support.probe_peers import (
    THREE_TOOLS,
    Peer,
    closed_port,
    connect_once,
    many_tools,
    start_http_peer,
    start_mcp_server,
)

LOOPBACK_ALLOWED = ProbeSettings(allow_loopback=True, timeout_s=10)
DEFAULTS = ProbeSettings()


@pytest.fixture(scope="module")
def peers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe-peers")


@pytest.fixture(scope="module")
def streamable_server(peers_dir: Path) -> Iterator[Peer]:
    peer = start_mcp_server(peers_dir, THREE_TOOLS)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def sse_server(peers_dir: Path) -> Iterator[Peer]:
    peer = start_mcp_server(peers_dir, THREE_TOOLS, transport="sse")
    yield peer
    peer.stop()


@pytest.fixture
def peer_factory(peers_dir: Path) -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


# ---------------------------------------------------------------- verified


async def test_a_streamable_http_server_is_verified_with_its_three_tools_and_their_fingerprints(
    streamable_server: Peer,
) -> None:
    result = await probe_endpoint(streamable_server.url(), "streamable-http", LOOPBACK_ALLOWED)

    assert result.status == "verified", result.detail
    assert result.server_info == {"name": "registry-test-server", "version": "3.1.4"}
    assert result.protocol_version
    assert result.capabilities is not None and "tools" in result.capabilities
    assert result.tools is not None
    assert [tool["name"] for tool in result.tools] == [tool["name"] for tool in THREE_TOOLS]
    for tool, spec in zip(result.tools, THREE_TOOLS, strict=True):
        assert tool["description"] == spec["description"]
        assert tool["inputSchema"]["properties"]["city"]["type"] == "string"
        assert tool["fingerprint"] == tool_fingerprint(tool)
        assert tool["fingerprint"].startswith("sha256:") and len(tool["fingerprint"]) == 71
    assert result.tools_fingerprint == tool_set_fingerprint({tool["name"]: tool["fingerprint"] for tool in result.tools})


async def test_an_sse_server_with_the_same_tools_is_verified_with_the_same_fingerprints(
    sse_server: Peer, streamable_server: Peer
) -> None:
    over_sse = await probe_endpoint(sse_server.url(), "sse", LOOPBACK_ALLOWED)
    over_streamable = await probe_endpoint(streamable_server.url(), "streamable-http", LOOPBACK_ALLOWED)

    assert over_sse.status == "verified", over_sse.detail
    assert over_sse.tools is not None and len(over_sse.tools) == 3
    assert over_sse.tools_fingerprint == over_streamable.tools_fingerprint


async def test_every_page_of_a_paginated_tool_list_is_listed(peers_dir: Path, peer_factory: list[Peer]) -> None:
    tools = many_tools(23)
    peer = start_mcp_server(peers_dir, tools, page_size=5)
    peer_factory.append(peer)

    result = await probe_endpoint(peer.url(), "streamable-http", LOOPBACK_ALLOWED)

    assert result.status == "verified", result.detail
    assert result.tools is not None
    assert [tool["name"] for tool in result.tools] == [tool["name"] for tool in tools]
    # Five pages of tools/list reached the server (plus the handshake and session requests).
    assert sum(1 for entry in peer.requests() if entry["method"] == "POST") >= 5


async def test_a_server_listing_more_tools_than_the_cap_is_refused(peers_dir: Path, peer_factory: list[Peer]) -> None:
    peer = start_mcp_server(peers_dir, many_tools(12), page_size=5)
    peer_factory.append(peer)

    result = await probe_endpoint(peer.url(), "streamable-http", ProbeSettings(allow_loopback=True, max_tools=10))

    assert result.status == "refused"
    assert result.detail == "the server lists more than 10 tools"
    assert result.tools is None


async def test_a_host_name_that_resolves_to_loopback_is_probed_at_that_address_with_its_own_host_header(
    streamable_server: Peer,
) -> None:
    before = len(streamable_server.requests())

    result = await probe_endpoint(streamable_server.url(host="localhost"), "streamable-http", LOOPBACK_ALLOWED)

    assert result.status == "verified", result.detail
    hosts = {entry["host"] for entry in streamable_server.requests()[before:]}
    assert hosts == {f"localhost:{streamable_server.port}"}


async def test_the_host_is_resolved_once_so_a_changing_dns_answer_cannot_move_the_probe(streamable_server: Peer) -> None:
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    asked: list[str] = []

    async def rebinding_resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    result = await probe_endpoint(
        f"http://rebind.test:{streamable_server.port}/mcp", "streamable-http", LOOPBACK_ALLOWED,
        resolver=rebinding_resolver,
    )

    assert result.status == "verified", result.detail
    assert asked == ["rebind.test"]


# ---------------------------------------------------------------- other outcomes


async def test_an_http_server_answering_html_is_not_mcp(peers_dir: Path, peer_factory: list[Peer]) -> None:
    peer = start_http_peer(peers_dir, "html")
    peer_factory.append(peer)

    for transport in ("streamable-http", "sse"):
        result = await probe_endpoint(peer.url(), transport, LOOPBACK_ALLOWED)
        assert result.status == "not_mcp", (transport, result.detail)
        assert result.detail and "text/html" in result.detail
        assert result.tools is None


async def test_a_closed_port_is_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}/mcp"

    result = await probe_endpoint(url, "streamable-http", LOOPBACK_ALLOWED)

    assert (result.status, result.detail) == ("unreachable", "the connection failed")


async def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    result = await probe_endpoint("https://no-such-host.invalid/mcp", "streamable-http", DEFAULTS)

    assert result.status == "unreachable"


async def test_a_server_that_never_answers_times_out_within_the_limit(peers_dir: Path, peer_factory: list[Peer]) -> None:
    peer = start_http_peer(peers_dir, "silent")
    peer_factory.append(peer)
    settings = ProbeSettings(allow_loopback=True, timeout_s=2)

    started = time.monotonic()
    result = await probe_endpoint(peer.url(), "streamable-http", settings)
    elapsed = time.monotonic() - started

    assert result.status == "timeout"
    assert result.detail == "no complete answer within 2 s"
    # Within the limit, plus closing the connections (a generous margin: this is not a benchmark).
    assert 2 <= elapsed < 5
    assert len(peer.log_lines()) >= 1  # it did connect


async def test_a_401_with_a_bearer_resource_metadata_challenge_is_auth_required(
    peers_dir: Path, peer_factory: list[Peer]
) -> None:
    metadata = "https://auth.example.com/.well-known/oauth-protected-resource/mcp"
    peer = start_http_peer(peers_dir, "unauthorized", location=metadata)
    peer_factory.append(peer)

    for transport in ("streamable-http", "sse"):
        result = await probe_endpoint(peer.url(), transport, LOOPBACK_ALLOWED)
        assert result.status == "auth_required", (transport, result.detail)
        assert result.resource_metadata == metadata
        assert result.tools is None


async def test_a_401_without_a_bearer_challenge_is_not_mcp(peers_dir: Path, peer_factory: list[Peer]) -> None:
    peer = start_http_peer(peers_dir, "basic")
    peer_factory.append(peer)

    result = await probe_endpoint(peer.url(), "streamable-http", LOOPBACK_ALLOWED)

    assert (result.status, result.resource_metadata) == ("not_mcp", None)
    assert result.detail == "the server answers 401 without an MCP (Bearer) authorization challenge"


# ---------------------------------------------------------------- SSRF


async def test_loopback_is_refused_when_not_allowed_and_the_server_sees_no_connection(
    peers_dir: Path, peer_factory: list[Peer]
) -> None:
    peer = start_http_peer(peers_dir, "html")
    peer_factory.append(peer)
    connect_once(peer)
    assert len(peer.log_lines()) == 1  # the peer records connections

    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        result = await probe_endpoint(peer.url(host=host), "streamable-http", DEFAULTS)
        assert (result.status, result.detail) == ("refused", "the host resolves to a loopback address"), host

    assert len(peer.log_lines()) == 1


async def test_a_redirect_to_the_metadata_address_is_refused_and_not_followed(
    peers_dir: Path, peer_factory: list[Peer]
) -> None:
    # The redirect target listens on loopback too: were it followed, it would record a connection.
    target = start_http_peer(peers_dir, "html")
    peer_factory.append(target)
    connect_once(target)
    redirector = start_http_peer(peers_dir, "redirect", location="http://169.254.169.254/latest/meta-data/")
    to_loopback = start_http_peer(peers_dir, "redirect", location=target.url(host="localhost"))
    peer_factory += [redirector, to_loopback]

    metadata = await probe_endpoint(redirector.url(), "streamable-http", LOOPBACK_ALLOWED)
    elsewhere = await probe_endpoint(to_loopback.url(), "streamable-http", LOOPBACK_ALLOWED)

    assert metadata.status == "refused"
    assert metadata.detail == "the server redirects to a refused address (the host resolves to a link-local address)"
    # Another origin is never followed, allowed or not: the finding is the redirect itself.
    assert elsewhere.status == "not_mcp" and elsewhere.detail and "redirects to" in elsewhere.detail
    assert len(target.log_lines()) == 1


async def test_an_oversized_response_is_cut_off(peers_dir: Path, peer_factory: list[Peer]) -> None:
    peer = start_http_peer(peers_dir, "oversized", size=3_000_000)
    peer_factory.append(peer)
    settings = ProbeSettings(allow_loopback=True, max_response_bytes=100_000)

    result = await probe_endpoint(peer.url(), "streamable-http", settings)

    assert (result.status, result.detail) == ("refused", "the server sent more than 100000 bytes")
    assert result.trace.received_bytes <= 100_000


async def test_only_http_and_https_are_probed() -> None:
    for url in ("ftp://example.com/mcp", "file:///etc/passwd"):
        result = await probe_endpoint(url, "streamable-http", DEFAULTS)
        assert (result.status, result.detail) == ("refused", "only http and https URLs are probed"), url


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("64:ff9b::a9fe:a9fe", "a link-local address"),
        ("2002:a9fe:a9fe::1", "a link-local address"),
        ("255.255.255.255", "a reserved address"),
    ],
)
def test_the_address_policy_refuses_what_must_never_be_probed(address: str, reason: str) -> None:
    from ipaddress import ip_address

    assert AddressPolicy(allow_loopback=False, allow_private=True).refusal(ip_address(address)) == reason


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.9", "192.168.1.1", "fd00::1", "100.64.0.1"])
def test_private_addresses_are_allowed_by_default_and_refusable(address: str) -> None:
    from ipaddress import ip_address

    assert AddressPolicy().refusal(ip_address(address)) is None
    assert AddressPolicy(allow_private=False).refusal(ip_address(address)) == "a private address"


def test_public_addresses_are_allowed_and_loopback_only_by_its_setting() -> None:
    from ipaddress import ip_address

    assert AddressPolicy().refusal(ip_address("20.50.1.1")) is None
    assert AddressPolicy().refusal(ip_address("2606:4700::1111")) is None
    assert AddressPolicy(allow_loopback=True).refusal(ip_address("127.0.0.1")) is None


# ---------------------------------------------------------------- cold start


def test_importing_the_function_app_does_not_import_the_mcp_sdk() -> None:
    code = (
        "import sys, function_app\n"
        "assert function_app.app is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'mcp', 'mcp_types', 'httpx2', 'httpcore2'}))"
    )
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert output.stdout.strip() == "[]"


def test_the_probe_module_does_import_the_mcp_sdk() -> None:
    # The sentinel for the test above: the same check sees the SDK once the probe is imported.
    code = "import sys, shared.probe\nprint('mcp' in sys.modules and 'httpx2' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert output.stdout.strip() == "True"
