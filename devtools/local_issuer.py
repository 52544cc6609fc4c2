"""A local OpenID issuer for runs without an Entra tenant.

It owns an RSA key, publishes an OpenID configuration and a JWKS on loopback, and mints Entra-shaped
access tokens (v1 or v2) for the configured tenant and client id. The app validates them through the
very same path as real Entra tokens: only the OpenID configuration URL differs, and the app accepts
that override only for a loopback URL.

Mint a token: `uv run python -m devtools.local_issuer --admin --email ada@example.com`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_settings import LOCAL_DIR, apply_local_values, load_local_settings

DEFAULT_KEY_FILE = LOCAL_DIR / "issuer-key.pem"
ISSUER_PATH = "/.local-issuer"
# The tenant and API the local issuer speaks for when no real tenant is configured.
LOCAL_TENANT_ID = "00000000-0000-4000-8000-00000000aaaa"
LOCAL_CLIENT_ID = "00000000-0000-4000-8000-00000000bbbb"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_or_create_key(path: Path = DEFAULT_KEY_FILE) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return key
    key = new_rsa_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:15]).decode("ascii")


def openid_configuration(base_url: str, tenant_id: str) -> dict[str, Any]:
    return {
        "issuer": f"https://login.microsoftonline.com/{tenant_id}/v2.0",
        "jwks_uri": f"{base_url}/discovery/v2.0/keys",
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint": f"{base_url}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base_url}/oauth2/v2.0/authorize",
    }


@dataclass
class TokenClaims:
    tenant_id: str
    client_id: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    email: str | None = None
    name: str | None = None
    admin_role: str | None = None
    roles: list[str] = field(default_factory=list)
    groups: list[str] | None = None
    version: str = "2.0"
    audience: str | None = None
    expires_in: int = 3600
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self, now: int | None = None) -> dict[str, Any]:
        now = int(time.time()) if now is None else now
        v1 = self.version == "1.0"
        issuer = (
            f"https://sts.windows.net/{self.tenant_id}/"
            if v1
            else f"https://login.microsoftonline.com/{self.tenant_id}/v2.0"
        )
        audience = self.audience or (f"api://{self.client_id}" if v1 else self.client_id)
        roles = list(self.roles) + ([self.admin_role] if self.admin_role else [])
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in,
            "oid": self.oid,
            "sub": self.oid,
            "tid": self.tenant_id,
            "ver": self.version,
            "scp": "access_as_user",
        }
        if self.name is not None:
            claims["name"] = self.name
        if self.email is not None:
            claims["upn" if v1 else "preferred_username"] = self.email
        if roles:
            claims["roles"] = roles
        if self.groups is not None:
            claims["groups"] = self.groups
        claims.update(self.extra)
        return claims


def mint_token(key: rsa.RSAPrivateKey, claims: dict[str, Any], *, kid: str | None = None) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or key_id(key), "typ": "JWT"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.local_issuer", description=__doc__)
    parser.add_argument("--admin", action="store_true", help="carry the admin app role")
    parser.add_argument("--email", default="dev@example.com")
    parser.add_argument("--name", default="Local Developer")
    parser.add_argument("--oid", default=None, help="object id (default: derived from the email)")
    parser.add_argument("--expires-in", type=int, default=3600, help="seconds")
    parser.add_argument("--token-version", choices=["1", "2"], default="2", help="v1 or v2 token form")
    args = parser.parse_args(argv)

    apply_local_values(load_local_settings().get("Values", {}))
    tenant = os.environ.get("ENTRA_TENANT_ID") or LOCAL_TENANT_ID
    client = os.environ.get("ENTRA_CLIENT_ID") or LOCAL_CLIENT_ID
    oid = args.oid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{args.email}"))
    claims = TokenClaims(
        tenant_id=tenant,
        client_id=client,
        oid=oid,
        email=args.email,
        name=args.name,
        admin_role=(os.environ.get("ENTRA_ADMIN_ROLE") or "Admin") if args.admin else None,
        version=f"{args.token_version}.0",
        expires_in=args.expires_in,
    )
    print(mint_token(load_or_create_key(), claims.payload()))


def issuer_documents(base_url: str, tenant_id: str, key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    """The local issuer's documents by path, served by the local host beside the API."""
    config = openid_configuration(f"{base_url}{ISSUER_PATH}", tenant_id)
    return {
        f"{ISSUER_PATH}/v2.0/.well-known/openid-configuration": json.dumps(config).encode(),
        f"{ISSUER_PATH}/discovery/v2.0/keys": json.dumps({"keys": [public_jwk(key, key_id(key))]}).encode(),
    }


if __name__ == "__main__":
    main()
