"""The signing-key cache in-process (shared/jwks.py), against a real JWKS on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devtools.local_issuer import key_id
from shared.jwks import SigningKeyCache
from tests.support.issuer import TestIssuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    own = TestIssuer()
    yield own
    own.release.set()
    own.close()


async def test_a_key_fetch_whose_first_caller_is_cancelled_still_serves_the_next_request(issuer: TestIssuer) -> None:
    cache = SigningKeyCache(issuer.openid_config_url, refresh_s=3600, cooldown_s=0, timeout_s=5)
    kid = key_id(issuer.signing_key)
    issuer.release.clear()
    first = asyncio.create_task(cache.get(kid))
    assert await asyncio.to_thread(issuer.keys_requested.wait, 10), "the key fetch never started"

    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    issuer.release.set()
    # A bound, not a timing assertion: before the fix this waited forever on the abandoned fetch.
    key = await asyncio.wait_for(cache.get(kid), timeout=20)

    assert key.kid == kid
    assert issuer.jwks_fetches == 1


async def test_callers_waiting_on_a_fetch_get_its_keys_when_one_of_them_is_cancelled(issuer: TestIssuer) -> None:
    cache = SigningKeyCache(issuer.openid_config_url, refresh_s=3600, cooldown_s=0, timeout_s=5)
    kid = key_id(issuer.signing_key)
    issuer.release.clear()
    callers = [asyncio.create_task(cache.get(kid)) for _ in range(3)]
    assert await asyncio.to_thread(issuer.keys_requested.wait, 10)

    callers[0].cancel()
    issuer.release.set()
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), timeout=20)

    assert isinstance(results[0], asyncio.CancelledError)
    assert [key.kid for key in results[1:]] == [kid, kid]  # type: ignore[union-attr]
    assert issuer.jwks_fetches == 1
