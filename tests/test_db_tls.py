"""TLS to PostgreSQL (DB_SSL), against a throwaway local cluster that only accepts TLS over TCP (`hostssl`)
with a server certificate for 127.0.0.1/localhost from a CA made here: a plain connection is refused,
verify-full with that CA works (through shared.db_connect's pool options and through the app), verify-full with
another CA fails as DATABASE_UNAVAILABLE, and `require` encrypts without verifying.

The cluster uses the machine's PostgreSQL programs (Debian's postgresql package): the embedded server's
build has no TLS support."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared import db_connect, db_errors
from shared.errors import DatabaseUnavailable
from shared.settings import DatabaseSettings
from tests.support.host import LocalHostProcess, free_port

# ---------------------------------------------------------------- certificates


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def make_server_cert(ca: Authority) -> tuple[bytes, bytes]:
    """A server certificate for localhost and 127.0.0.1 signed by `ca`: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# ---------------------------------------------------------------- a TLS-only cluster


@dataclass
class TlsCluster:
    port: int
    ca_file: Path
    other_ca_file: Path

    def dsn(self, host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/postgres"


def _chown_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def postgres_bin_dir() -> Path:
    """The machine's PostgreSQL server programs (Debian's package; the embedded build has no TLS)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    assert found, "PostgreSQL server programs not found under /usr/lib/postgresql (Debian package postgresql)"
    return found[-1].parent


def _run_as(user: str | None, *args: str) -> None:
    completed = subprocess.run(args, user=user, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[TlsCluster]:
    bin_dir = postgres_bin_dir()
    # The server refuses to run as root: as root, run it as the package's postgres user.
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="mcpreg-tls-"))
    base.chmod(0o755)
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    _chown_to(data_dir, user)
    _run_as(user, str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    ca, other_ca = make_ca("MCP Registry test CA"), make_ca("Some other CA")
    cert_pem, key_pem = make_server_cert(ca)
    for name, content, mode in (("server.crt", cert_pem, 0o644), ("server.key", key_pem, 0o600)):
        path = data_dir / name
        path.write_bytes(content)
        path.chmod(mode)
        _chown_to(path, user)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
        )
    # TCP only with TLS; a plain TCP connection matches the explicit reject.
    (data_dir / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
    )
    ca_file, other_ca_file = base / "ca.pem", base / "other-ca.pem"
    ca_file.write_bytes(ca.pem())
    other_ca_file.write_bytes(other_ca.pem())

    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    log = data_dir / "server.log"
    _run_as(user, pg_ctl, "-D", str(data_dir), "-w", "-t", "60", "-l", str(log),
            "-o", f"-h 127.0.0.1 -p {port} -k {data_dir}", "start")
    try:
        yield TlsCluster(port, ca_file, other_ca_file)
    finally:
        _run_as(user, pg_ctl, "-D", str(data_dir), "-w", "-m", "fast", "stop")
        shutil.rmtree(base, ignore_errors=True)


def settings_for(dsn: str, ssl_mode: str, root_cert: Path | None = None) -> DatabaseSettings:
    env = {"DATABASE_URL": dsn, "DB_SSL": ssl_mode, "DB_ACQUIRE_TIMEOUT_S": "5"}
    if root_cert is not None:
        env["DB_SSL_ROOT_CERT"] = str(root_cert)
    return DatabaseSettings.from_env(env)


@pytest.fixture
async def pools() -> AsyncIterator[Callable[[DatabaseSettings], asyncpg.Pool]]:
    """Create pools exactly as shared.db does (shared.db_connect.pool_options), closing them after the test."""
    created: list[asyncpg.Pool] = []

    async def create(settings: DatabaseSettings) -> asyncpg.Pool:
        options = db_connect.pool_options(settings)
        options["min_size"] = 1  # connect now
        pool = await asyncpg.create_pool(**options)
        created.append(pool)
        return pool

    yield create  # type: ignore[misc]
    for pool in created:
        await pool.close()


async def _ssl_in_use(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        in_use: bool = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    return in_use


async def test_a_plain_connection_is_refused(tls_cluster: TlsCluster, pools: Callable[..., object]) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError) as raised:
        await pools(settings_for(tls_cluster.dsn(), "disable"))  # type: ignore[misc]
    assert "no encryption" in str(raised.value) or "rejects connection" in str(raised.value)
    assert isinstance(db_errors.as_api_error(raised.value), DatabaseUnavailable)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_verify_full_with_the_servers_ca_connects_encrypted(
    tls_cluster: TlsCluster, pools: Callable[..., object], host: str
) -> None:
    settings = settings_for(tls_cluster.dsn(host), "verify-full", tls_cluster.ca_file)
    context = db_connect.ssl_context_for(settings)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    pool = await pools(settings)  # type: ignore[misc]
    assert await _ssl_in_use(pool)  # type: ignore[arg-type]


async def test_verify_full_with_another_ca_fails_as_database_unavailable(
    tls_cluster: TlsCluster, pools: Callable[..., object]
) -> None:
    settings = settings_for(tls_cluster.dsn(), "verify-full", tls_cluster.other_ca_file)
    with pytest.raises(ssl.SSLCertVerificationError) as raised:
        await pools(settings)  # type: ignore[misc]
    assert isinstance(db_errors.as_api_error(raised.value), DatabaseUnavailable)


async def test_verify_full_with_the_systems_cas_does_not_trust_a_private_ca(
    tls_cluster: TlsCluster, pools: Callable[..., object]
) -> None:
    # No DB_SSL_ROOT_CERT: the default trust store (Azure's public CAs), which our CA is not in.
    with pytest.raises(ssl.SSLCertVerificationError):
        await pools(settings_for(tls_cluster.dsn(), "verify-full"))  # type: ignore[misc]


async def test_require_encrypts_without_verifying(tls_cluster: TlsCluster, pools: Callable[..., object]) -> None:
    pool = await pools(settings_for(tls_cluster.dsn(), "require"))  # type: ignore[misc]
    assert await _ssl_in_use(pool)  # type: ignore[arg-type]


async def test_the_app_serves_over_verified_tls_and_is_503_with_an_untrusted_server(
    tls_cluster: TlsCluster, start_host: Callable[..., LocalHostProcess]
) -> None:
    verified = start_host(
        DATABASE_URL=tls_cluster.dsn("localhost"), DB_SSL="verify-full", DB_SSL_ROOT_CERT=str(tls_cluster.ca_file)
    )
    untrusted = start_host(
        DATABASE_URL=tls_cluster.dsn(),
        DB_SSL="verify-full",
        DB_SSL_ROOT_CERT=str(tls_cluster.other_ca_file),
        DB_ACQUIRE_TIMEOUT_S="2",
    )
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(f"{verified.base_url}/api/health")
        assert response.status_code == 200 and response.json()["database"] == "connected"
        response = await client.get(f"{untrusted.base_url}/api/health")
        assert response.status_code == 503 and response.json()["database"] == "disconnected"
