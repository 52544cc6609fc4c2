"""Entra ID bearer tokens: who is calling, as far as the token proves it.

`authenticate` verifies `Authorization: Bearer <jwt>` (RS256 from the tenant's published keys, one of the
tenant's two issuers, this API as audience, required and type-checked claims), applies the EasyAuth second
check when App Service authentication is on, makes sure the caller's user row exists, and returns a typed
`Caller`. A verified token is remembered until its own `exp`. The decorators that call it are in
shared/auth.py; there is no switch that skips verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import azure.functions as func
import jwt
from cachetools import TLRUCache

from shared.errors import Unauthenticated
from shared.jwks import SigningKeysUnavailable, UnknownSigningKey, signing_key_cache
from shared.settings import AuthSettings, get_auth_settings
from shared.users import upsert_signed_in_user

logger = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "oid", "tid"]
# Headers that try to bring their own key; Entra never sends them.
_KEY_SUPPLYING_HEADERS = ("jku", "x5u", "jwk", "x5c")
_OID_CLAIM_TYPES = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_TID_CLAIM_TYPES = ("tid", "http://schemas.microsoft.com/identity/claims/tenantid")

class TokenRejected(Exception):
    """Why a token was refused: for the log only; the client gets one stable message."""


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    tenant_id: UUID
    oid: str
    email: str
    name: str
    is_admin: bool
    # True only for the request whose sign-in created the user row.
    created: bool = False


@dataclass(frozen=True)
class _VerifiedToken:
    tenant_id: UUID
    oid: str
    # The subject: only used to claim a user imported from the FastAPI version, which keyed users by it.
    sub: str | None
    email: str
    name: str
    is_admin: bool
    expires_at: float


# ---------------------------------------------------------------- token parsing and verification


def extract_bearer_token(authorization: str | None, max_bytes: int) -> str:
    if not authorization:
        raise TokenRejected("no Authorization header")
    if len(authorization) > max_bytes:
        raise TokenRejected(f"Authorization header longer than {max_bytes} bytes")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenRejected("scheme is not Bearer")
    token = credentials.strip(" ")
    if not token:
        raise TokenRejected("empty bearer token")
    # The host joins repeated headers with a comma: more than one token is refused, never guessed.
    if any(char in token for char in ", \t"):
        raise TokenRejected("more than one credential")
    if token.count(".") != 2:
        raise TokenRejected("not a compact JWS")
    return token


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _first_string(claims: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def is_admin_claims(claims: Mapping[str, Any], settings: AuthSettings) -> bool:
    roles = claims.get("roles")
    if isinstance(roles, list) and settings.admin_role in roles:
        return True
    groups = claims.get("groups")
    # With group overage the `groups` claim is absent (only _claim_names): never assume membership.
    if settings.admin_group_id is not None and isinstance(groups, list):
        return str(settings.admin_group_id) in {str(group).lower() for group in groups}
    return False


def check_claims(claims: Mapping[str, Any], settings: AuthSettings) -> None:
    """What PyJWT does not check by itself: types, tenant, object id, token version, delegation."""
    for name in ("exp", "nbf", "iat"):
        if not _is_number(claims.get(name)):
            raise TokenRejected(f"{name} is not a number")
    audience = claims.get("aud")
    if not isinstance(audience, str) or audience not in settings.audiences:
        raise TokenRejected("aud is not this API")
    tid = claims.get("tid")
    if not isinstance(tid, str) or tid.lower() != str(settings.tenant_id):
        raise TokenRejected("tid is not the configured tenant")
    oid = claims.get("oid")
    if not isinstance(oid, str) or not _GUID.match(oid):
        raise TokenRejected("oid is missing or not a GUID")
    version = claims.get("ver")
    issuer = claims.get("iss")
    if version is not None:
        expected = {"1.0": settings.issuers[0], "2.0": settings.issuers[1]}.get(str(version))
        if expected != issuer:
            raise TokenRejected("ver does not match the issuer form")
    scopes, roles = claims.get("scp"), claims.get("roles")
    if scopes is not None and not isinstance(scopes, str):
        raise TokenRejected("scp is not a string")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(role, str) for role in roles)):
        raise TokenRejected("roles is not a list of strings")
    if not scopes and not roles:
        raise TokenRejected("neither scp nor roles: not an access token for this API")


async def verify_token(token: str, settings: AuthSettings) -> _VerifiedToken:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"malformed token header ({type(exc).__name__})") from None
    if header.get("alg") != "RS256":
        raise TokenRejected("alg is not RS256")
    if any(name in header for name in _KEY_SUPPLYING_HEADERS):
        raise TokenRejected("token header tries to supply a key")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("no kid")
    try:
        signing_key = await signing_key_cache(settings).get(kid)
    except UnknownSigningKey:
        raise TokenRejected("unknown kid") from None
    except SigningKeysUnavailable:
        raise TokenRejected("signing keys unavailable") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.public_key,
            algorithms=["RS256"],
            audience=list(settings.audiences),
            issuer=list(settings.issuers),
            leeway=settings.leeway_s,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
    check_claims(claims, settings)
    if signing_key.issuer is not None:
        bound_issuer = signing_key.issuer.replace("{tenantid}", claims["tid"])
        if bound_issuer not in {claims["iss"], settings.issuers[1]}:
            raise TokenRejected("signing key belongs to another issuer")
    return _VerifiedToken(
        tenant_id=settings.tenant_id,
        oid=claims["oid"].lower(),
        sub=claims["sub"] if isinstance(claims.get("sub"), str) else None,
        email=_first_string(claims, "email", "preferred_username", "upn", "unique_name"),
        name=_first_string(claims, "name"),
        is_admin=is_admin_claims(claims, settings),
        expires_at=float(claims["exp"]),
    )


# ---------------------------------------------------------------- EasyAuth second check


def _principal_claims(encoded: str) -> list[Mapping[str, Any]]:
    try:
        principal = json.loads(base64.b64decode(encoded, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: deeply nested JSON; a header anyone can shape must not become a 500.
        raise TokenRejected("EasyAuth principal is not base64 JSON") from None
    claims = principal.get("claims") if isinstance(principal, dict) else None
    if not isinstance(claims, list) or not all(isinstance(claim, dict) for claim in claims):
        raise TokenRejected("EasyAuth principal has no claims list")
    return claims


def _principal_value(claims: list[Mapping[str, Any]], types: tuple[str, ...]) -> str | None:
    for claim in claims:
        if claim.get("typ") in types and isinstance(claim.get("val"), str):
            return str(claim["val"]).lower()
    return None


def check_easyauth_principal(headers: Mapping[str, str], token: _VerifiedToken) -> None:
    """Behind EasyAuth the platform's principal must be the token's user."""
    principal_id = headers.get("x-ms-client-principal-id")
    encoded = headers.get("x-ms-client-principal")
    if not principal_id or not encoded:
        raise TokenRejected("EasyAuth principal headers missing")
    if principal_id.strip().lower() != token.oid:
        raise TokenRejected("EasyAuth principal id is another user")
    claims = _principal_claims(encoded)
    if _principal_value(claims, _OID_CLAIM_TYPES) != token.oid:
        raise TokenRejected("EasyAuth principal is another user")
    tenant = _principal_value(claims, _TID_CLAIM_TYPES)
    if tenant is not None and tenant != str(token.tenant_id):
        raise TokenRejected("EasyAuth principal is from another tenant")


# ---------------------------------------------------------------- verified-token → caller cache


CachedCaller = tuple[_VerifiedToken, Caller]


def _until_the_token_expires(digest: bytes, entry: CachedCaller, now: float) -> float:
    return entry[0].expires_at


# The wall clock, because a token's `exp` is a Unix time.
_callers: TLRUCache[bytes, CachedCaller] = TLRUCache(0, _until_the_token_expires, timer=time.time)


def _caller_cache(settings: AuthSettings) -> TLRUCache[bytes, CachedCaller]:
    """Verified token digest → caller until the token's own `exp`; bounded, least recently used out."""
    global _callers
    if _callers.maxsize != settings.caller_cache_size:
        _callers = TLRUCache(settings.caller_cache_size, _until_the_token_expires, timer=time.time)
    return _callers


async def authenticate(req: func.HttpRequest) -> Caller:
    settings = get_auth_settings()
    try:
        token = extract_bearer_token(req.headers.get("authorization"), settings.max_token_bytes)
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        cache = _caller_cache(settings)
        cached = cache.get(digest)
        verified = cached[0] if cached is not None else await verify_token(token, settings)
        if settings.easyauth_check_enabled:
            check_easyauth_principal(req.headers, verified)
    except TokenRejected as exc:
        logger.info("token rejected: %s", exc)
        raise Unauthenticated("Invalid or missing bearer token") from None
    if cached is not None:
        return cached[1]
    signed_in = await upsert_signed_in_user(
        tenant_id=verified.tenant_id,
        oid=verified.oid,
        sub=verified.sub,
        email=verified.email,
        display_name=verified.name,
        is_admin=verified.is_admin,
    )
    caller = Caller(
        user_id=signed_in.user_id,
        tenant_id=verified.tenant_id,
        oid=verified.oid,
        email=verified.email,
        name=verified.name,
        is_admin=verified.is_admin,
        created=signed_in.created,
    )
    if cache.maxsize > 0:  # AUTH_CALLER_CACHE_SIZE=0 switches the cache off
        cache[digest] = (verified, replace(caller, created=False))
    return caller
