"""The probe's HTTP layer: a client that can only reach the registered endpoint's origin, at the one address its
host resolved to when the probe began, within a byte budget.

Defences against turning the probe against the service (SSRF):
- only `http` and `https`; the host is resolved once, every address it resolves to must be allowed, and every
  connection goes to the first of them (a DNS answer that changes mid-probe cannot move it: no rebinding). TLS
  still verifies the certificate for, and sends SNI of, the registered host name;
- loopback (unless PROBE_ALLOW_LOOPBACK), link-local (169.254.0.0/16 holds the cloud metadata endpoint,
  fe80::/10), unspecified, multicast and reserved addresses are refused, including IPv4 addresses embedded
  in IPv6 ones; private ranges are allowed unless PROBE_ALLOW_PRIVATE is false;
- requests to any other origin are refused; redirects are never followed here (the MCP SDK follows only
  same-origin ones), and a redirect to a refused address ends the probe as `refused`;
- connect and total timeouts, a cap on the bytes received; no credentials, cookies or caller headers.

Imported only by shared/probe.py, which is imported when a probe first runs (httpx2 comes with the MCP SDK).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import httpcore2
import httpx2

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "mcp-registry-probe/1"
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, the well-known and local-use ones).
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")


class ProbeStopped(httpx2.TransportError):
    """The probe's own HTTP layer ended the probe (its outcome is in the trace)."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_loopback: bool = False
    allow_private: bool = True

    def refusal(self, address: Address) -> str | None:
        """Why the probe may not connect to `address`, or None if it may."""
        if isinstance(address, IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                return self.refusal(embedded)
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_unspecified or (isinstance(address, IPv4Address) and address in _THIS_NETWORK):
            return "an unspecified address"
        if address.is_multicast:
            return "a multicast address"
        if address.is_reserved:
            return "a reserved address"
        if address.is_global:
            return None
        if address.is_private or (isinstance(address, IPv4Address) and address in _SHARED_ADDRESS_SPACE):
            return None if self.allow_private else "a private address"
        return "an address that is not publicly routable"


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AddressRefused(Exception):
    """The URL's scheme or address is not allowed."""


class HostNotFound(Exception):
    """The URL's host name does not resolve."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # as httpcore dials it: lower-case, IDNA-encoded, IPv6 without brackets
    port: int

    @classmethod
    def of(cls, url: str | httpx2.URL) -> Origin:
        parsed = httpx2.URL(url) if isinstance(url, str) else url
        scheme = parsed.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise AddressRefused("only http and https URLs are probed")
        host = parsed.raw_host.decode("ascii").lower()
        if not host:
            raise AddressRefused("the URL has no host")
        return cls(scheme, host, parsed.port or DEFAULT_PORTS[scheme])


async def resolve_allowed(host: str, port: int, policy: AddressPolicy, resolver: Resolver) -> Address:
    """The address to connect to: every address the host resolves to must be allowed, the first is used."""
    try:
        addresses = [ip_address(host)]
    except ValueError:
        try:
            answers = await resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise HostNotFound(f"the host name does not resolve ({exc.__class__.__name__})") from None
        addresses = [ip_address(answer.split("%", 1)[0]) for answer in answers]
    if not addresses:
        raise HostNotFound("the host name does not resolve")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise AddressRefused(f"the host resolves to {reason}")
    return addresses[0]


@dataclass
class ProbeTrace:
    """What the HTTP layer saw, and the outcome it decided on its own (it then cancels the probe)."""

    outcome: tuple[str, str] | None = None
    challenge: httpx2.Response | None = None
    redirect: str | None = None
    transport_error: Exception | None = None
    received_bytes: int = 0
    cancel: Callable[[], Any] | None = None

    def stop(self, status: str, detail: str) -> None:
        if self.outcome is None:
            self.outcome = (status, detail)
        if self.cancel is not None:
            self.cancel()


class _PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Dials the pinned address whatever name httpcore asks for, and only for the probed origin."""

    def __init__(self, origin: Origin, address: Address, trace: ProbeTrace) -> None:
        self._origin = origin
        self._address = str(address)
        self._trace = trace
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        if (host.lower(), port) != (self._origin.host, self._origin.port):
            self._trace.stop("refused", "a connection to another origin was attempted")
            raise httpcore2.ConnectError("refused: another origin")
        return await self._inner.connect_tcp(
            self._address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("refused: unix sockets are never probed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, stream: httpx2.AsyncByteStream, trace: ProbeTrace, limit: int) -> None:
        self._stream = stream
        self._trace = trace
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._trace.received_bytes += len(chunk)
            if self._trace.received_bytes > self._limit:
                self._trace.stop("refused", f"the server sent more than {self._limit} bytes")
                raise ProbeStopped("response size cap reached")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


# Headers a probe never sends, whoever adds them: credentials and cookies.
_STRIPPED_HEADERS = ("authorization", "proxy-authorization", "cookie")


class ProbeTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self,
        origin: Origin,
        address: Address,
        *,
        policy: AddressPolicy,
        resolver: Resolver,
        trace: ProbeTrace,
        max_response_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._origin = origin
        self._policy = policy
        self._resolver = resolver
        self._trace = trace
        self._max_response_bytes = max_response_bytes
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        # The same pool httpx2 builds, dialling through the pinned backend.
        self._inner._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or httpx2.create_ssl_context(trust_env=False),
            max_connections=4,
            network_backend=_PinnedBackend(origin, address, trace),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            same_origin = Origin.of(request.url) == self._origin
        except AddressRefused:
            same_origin = False
        if not same_origin:
            # Only a redirect the SDK follows leads here (http to https on the same host): the registered URL is
            # not the server's; a redirect to a refused address was already decided as `refused` when answered.
            detail = f"the server redirects to {request.url} (not followed; register that URL if it is the server)"
            self._trace.stop("not_mcp", detail)
            raise ProbeStopped("another origin")
        for name in _STRIPPED_HEADERS:
            request.headers.pop(name, None)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            if self._trace.transport_error is None:
                self._trace.transport_error = exc
            raise
        await self._inspect(request, response)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and self._trace.received_bytes + int(declared) > self._max_response_bytes:
            await response.aclose()
            self._trace.stop("refused", f"the server sent more than {self._max_response_bytes} bytes")
            raise ProbeStopped("response size cap reached")
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._trace, self._max_response_bytes),
            extensions=response.extensions,
            request=request,
        )

    async def _inspect(self, request: httpx2.Request, response: httpx2.Response) -> None:
        if response.status_code == 401 and self._trace.challenge is None:
            response.request = request
            self._trace.challenge = response
        location = response.headers.get("location")
        if 300 <= response.status_code < 400 and location and self._trace.redirect is None:
            target = request.url.join(location)
            self._trace.redirect = str(target)
            try:
                origin = Origin.of(target)
                await resolve_allowed(origin.host, origin.port, self._policy, self._resolver)
            except AddressRefused as exc:
                self._trace.stop("refused", f"the server redirects to a refused address ({exc})")
            except HostNotFound:
                pass  # not followed either way; the redirect itself is the finding

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class ProbeClientFactory:
    """Builds the httpx2 clients the MCP SDK's transports use, all bound to one pinned origin."""

    origin: Origin
    address: Address
    policy: AddressPolicy
    resolver: Resolver
    trace: ProbeTrace
    max_response_bytes: int
    connect_timeout_s: float
    timeout_s: float
    ssl_context: ssl.SSLContext | None = None
    clients: list[httpx2.AsyncClient] = field(default_factory=list)

    def __call__(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        # The SDK's own headers are set per request; nothing of the caller's (headers, auth) is used.
        transport = ProbeTransport(
            self.origin,
            self.address,
            policy=self.policy,
            resolver=self.resolver,
            trace=self.trace,
            max_response_bytes=self.max_response_bytes,
            ssl_context=self.ssl_context,
        )
        client = httpx2.AsyncClient(
            transport=transport,
            timeout=httpx2.Timeout(self.timeout_s, connect=self.connect_timeout_s),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self.clients.append(client)
        return client
