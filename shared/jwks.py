"""The tenant's token-signing keys: one cache per worker, shared by every invocation.

Keys come from the OpenID configuration's `jwks_uri`. They are fetched off the event loop, one fetch
serves every concurrent caller, the set is refreshed in the background once it is older than the refresh
interval, and an unknown `kid` triggers at most one refetch per cooldown (a flood of random kids cannot
hammer the key endpoint). When the endpoint fails, the last known good keys stay in use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from shared.settings import AuthSettings, is_loopback_url

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1024 * 1024
STALE_RETRY_S = 30.0


class SigningKeysUnavailable(Exception):
    """No keys could be fetched and none are cached."""


class UnknownSigningKey(Exception):
    """The token names a key the tenant does not publish."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: RSAPublicKey
    # Entra's v2 JWKS binds some keys to an issuer ("…/{tenantid}/v2.0"); v1 keys carry none.
    issuer: str | None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _allowed_document_url(url: str, configured_url: str) -> bool:
    # Keys may only come from where the configuration lives: https, or loopback for a local issuer.
    if is_loopback_url(configured_url):
        return is_loopback_url(url)
    return url.startswith("https://")


def _get_json(url: str, timeout_s: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with _opener.open(request, timeout=timeout_s) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status} from {url}")
        data = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError("document too large")
    return json.loads(data)


def parse_jwks(document: Any) -> dict[str, SigningKey]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no keys array")
    keys: dict[str, SigningKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            public_key = jwt.PyJWK(entry, algorithm="RS256").key
        except jwt.PyJWTError:
            logger.warning("skipping malformed signing key %s", kid)
            continue
        if not isinstance(public_key, RSAPublicKey):
            continue
        issuer = entry.get("issuer")
        keys[kid] = SigningKey(kid, public_key, issuer if isinstance(issuer, str) else None)
    return keys


def fetch_signing_keys(openid_config_url: str, timeout_s: float) -> dict[str, SigningKey]:
    """Blocking: read the OpenID configuration, then its JWKS."""
    config = _get_json(openid_config_url, timeout_s)
    jwks_uri = config.get("jwks_uri") if isinstance(config, dict) else None
    if not isinstance(jwks_uri, str) or not _allowed_document_url(jwks_uri, openid_config_url):
        raise ValueError("OpenID configuration has no acceptable jwks_uri")
    keys = parse_jwks(_get_json(jwks_uri, timeout_s))
    if not keys:
        raise ValueError("JWKS holds no RSA signing keys")
    return keys


class SigningKeyCache:
    def __init__(self, openid_config_url: str, *, refresh_s: float, cooldown_s: float, timeout_s: float) -> None:
        self.openid_config_url = openid_config_url
        self.refresh_s = refresh_s
        self.cooldown_s = cooldown_s
        self.timeout_s = timeout_s
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._last_attempt_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._inflight_loop: asyncio.AbstractEventLoop | None = None
        self.fetch_count = 0
        self._background: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> SigningKey:
        now = time.monotonic()
        if not self._keys:
            await self._refresh()
        elif self._refresh_due(now):
            # Stale but usable: serve the current keys, refresh beside the request.
            self._background = asyncio.get_running_loop().create_task(self._refresh_quietly())
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_attempt_at is None or time.monotonic() - self._last_attempt_at >= self.cooldown_s:
            await self._refresh_quietly()
            key = self._keys.get(kid)
            if key is not None:
                return key
        if not self._keys:
            raise SigningKeysUnavailable()
        raise UnknownSigningKey(kid)

    def _refresh_due(self, now: float) -> bool:
        if self._fetched_at is None or now - self._fetched_at < self.refresh_s:
            return False
        # While the endpoint keeps failing, stale keys are retried at most once per retry interval.
        retry_after = max(self.cooldown_s, STALE_RETRY_S)
        return self._last_attempt_at is None or now - self._last_attempt_at >= retry_after

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except SigningKeysUnavailable:
            pass

    async def _refresh(self) -> None:
        """One fetch at a time; concurrent callers wait for the same one.

        The fetch runs as its own task and every caller, the first included, waits on it through a shield: a
        caller that is cancelled (its request timed out, its client went away) leaves the fetch running for
        the others. (It was awaited inline; a cancelled first caller left the shared result unresolved and
        every later request on the worker waited on it forever.)
        """
        loop = asyncio.get_running_loop()
        if self._inflight is None or self._inflight_loop is not loop or self._inflight.done():
            self._inflight, self._inflight_loop = loop.create_task(self._fetch()), loop
        await asyncio.shield(self._inflight)
        if not self._keys:
            raise SigningKeysUnavailable()

    async def _fetch(self) -> None:
        self._last_attempt_at = time.monotonic()
        self.fetch_count += 1
        try:
            keys = await asyncio.to_thread(fetch_signing_keys, self.openid_config_url, self.timeout_s)
        except Exception as exc:
            logger.warning("signing key refresh failed (%s); keeping %d cached key(s)", type(exc).__name__, len(self._keys))
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
        logger.info("signing keys refreshed: %d key(s)", len(keys))


_cache: SigningKeyCache | None = None


def signing_key_cache(settings: AuthSettings) -> SigningKeyCache:
    global _cache
    if _cache is None or _cache.openid_config_url != settings.openid_configuration_url:
        _cache = SigningKeyCache(
            settings.openid_configuration_url,
            refresh_s=settings.jwks_refresh_s,
            cooldown_s=settings.jwks_unknown_kid_cooldown_s,
            timeout_s=settings.jwks_fetch_timeout_s,
        )
    return _cache
