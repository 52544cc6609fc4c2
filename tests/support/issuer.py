"""A test OpenID issuer on loopback: real RSA keys, a real JWKS over HTTP, and knobs for key rotation,
outages and counting fetches."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_issuer import TokenClaims, key_id, mint_token, new_rsa_key, openid_configuration, public_jwk

TENANT_ID = "6f1c2a4e-8b3d-4c5e-9f70-123456789abc"
CLIENT_ID = "0b7e4a52-3c1d-4e8f-a9b6-fedcba987654"
ADMIN_ROLE = "Admin"
ADMIN_GROUP_ID = "2d5c0e4f-7a9b-4c3d-8e1f-a0b1c2d3e4f5"


class TestIssuer:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.signing_key = new_rsa_key()
        self.published: list[rsa.RSAPrivateKey] = [self.signing_key]
        self.jwks_fetches = 0
        self.config_fetches = 0
        self.down = False
        # A JWKS request waits while `release` is clear; `keys_requested` tells a test one has arrived.
        self.release = threading.Event()
        self.release.set()
        self.keys_requested = threading.Event()
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer._lock:
                    down = issuer.down
                    if self.path.endswith("/keys"):
                        issuer.jwks_fetches += 1
                    elif self.path.endswith("openid-configuration"):
                        issuer.config_fetches += 1
                if down:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path.endswith("openid-configuration"):
                    body = openid_configuration(issuer.base_url, TENANT_ID)
                elif self.path.endswith("/keys"):
                    issuer.keys_requested.set()
                    issuer.release.wait(timeout=30)
                    body = issuer.jwks()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/{TENANT_ID}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def openid_config_url(self) -> str:
        return f"{self.base_url}/v2.0/.well-known/openid-configuration"

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [public_jwk(key, key_id(key)) for key in self.published]}

    def rotate(self) -> rsa.RSAPrivateKey:
        """Publish a new signing key beside the old one and sign with it from now on."""
        new_key = new_rsa_key()
        with self._lock:
            self.published.append(new_key)
            self.signing_key = new_key
        return new_key

    def reset_counts(self) -> None:
        with self._lock:
            self.jwks_fetches = 0
            self.config_fetches = 0

    def claims(self, **overrides: Any) -> TokenClaims:
        values: dict[str, Any] = {
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "email": None,
            "name": None,
        }
        values.update(overrides)
        if values["email"] is None:
            values["email"] = f"user-{uuid.uuid4().hex[:10]}@example.com"
        if values["name"] is None:
            values["name"] = "Test User"
        return TokenClaims(**values)

    def token(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **overrides: Any) -> str:
        signing_key = key or self.signing_key
        return mint_token(signing_key, self.claims(**overrides).payload(), kid=kid or key_id(signing_key))

    def sign(self, payload: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, headers: dict[str, Any] | None = None, algorithm: str = "RS256") -> str:
        import jwt

        signing_key = key or self.signing_key
        all_headers = {"kid": key_id(signing_key), "typ": "JWT"}
        all_headers.update(headers or {})
        return jwt.encode(payload, signing_key, algorithm=algorithm, headers=all_headers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def bearer(token: str, **headers: str) -> dict[str, str]:
    """Request headers carrying `token` as a bearer credential (plus any others given)."""
    return {"Authorization": f"Bearer {token}", **headers}
