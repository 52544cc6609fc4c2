"""Decisions bind to what the admin reviewed: If-Match on approve/reject, and for the frontend, which sends no
If-Match, an approval is refused shortly after someone else edited the registration."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from tests.support.issuer import bearer
from tests.support.registrations import REGISTRATIONS, assert_error, create_registration, unique_url

TokenFactory = Callable[..., str]


async def status_change(
    api: httpx.AsyncClient, admin: str, registration_id: str, status: str, if_match: str | None = None
) -> httpx.Response:
    headers = bearer(admin) | ({"If-Match": if_match} if if_match is not None else {})
    return await api.patch(f"{REGISTRATIONS}/{registration_id}/status", json={"status": status}, headers=headers)


async def reviewed_then_swapped(api: httpx.AsyncClient, user_token: TokenFactory) -> tuple[dict[str, Any], str, str, str]:
    """The race: a submitter's benign registration, the admin's read of it (its ETag), then the submitter's swap."""
    submitter, admin = user_token(), user_token(admin=True)
    created = await create_registration(api, submitter, endpoint_url=unique_url("benign"))
    reviewed = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))
    assert reviewed.headers["ETag"] == '"1"'
    swapped = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_url": unique_url("evil")}, headers=bearer(submitter)
    )
    assert swapped.status_code == 200, swapped.text
    return created, admin, reviewed.headers["ETag"], swapped.headers["ETag"]


async def current_status(db: asyncpg.Connection, registration_id: str) -> str:
    status: str = await db.fetchval("SELECT status FROM registrations WHERE registration_id = $1", uuid.UUID(registration_id))
    return status


async def test_an_approval_with_the_reviewed_etag_after_the_submitter_swapped_the_url_is_412_and_approves_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created, admin, reviewed_etag, _ = await reviewed_then_swapped(api, user_token)

    response = await status_change(api, admin, created["registration_id"], "Approved", if_match=reviewed_etag)

    assert_error(response, 412, "PRECONDITION_FAILED")
    assert await current_status(db, created["registration_id"]) == "Pending"


async def test_an_approval_with_the_current_etag_applies(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created, admin, _, current_etag = await reviewed_then_swapped(api, user_token)

    response = await status_change(api, admin, created["registration_id"], "Approved", if_match=current_etag)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Approved"


async def test_an_approval_without_if_match_right_after_someone_elses_edit_is_412_telling_the_admin_to_reload(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created, admin, _, _ = await reviewed_then_swapped(api, user_token)

    response = await status_change(api, admin, created["registration_id"], "Approved")

    body = assert_error(response, 412, "PRECONDITION_FAILED")
    assert "reload" in body["detail"]
    assert await current_status(db, created["registration_id"]) == "Pending"


async def test_an_approval_without_if_match_once_the_review_window_has_passed_applies(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    created, admin, _, _ = await reviewed_then_swapped(api, user_token)
    # The edit happened longer ago than APPROVAL_REVIEW_WINDOW_S (900 s by default).
    await db.execute(
        "UPDATE registrations SET edited_at = edited_at - interval '901 seconds' WHERE registration_id = $1",
        uuid.UUID(created["registration_id"]),
    )

    response = await status_change(api, admin, created["registration_id"], "Approved")

    assert response.status_code == 200, response.text


async def test_an_approval_without_if_match_of_a_never_edited_registration_applies(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created = await create_registration(api, user_token())

    response = await status_change(api, user_token(admin=True), created["registration_id"], "Approved")

    assert response.status_code == 200, response.text


async def test_an_approval_without_if_match_right_after_the_admins_own_edit_applies(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created, admin = await create_registration(api, user_token()), user_token(admin=True)
    edited = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"description": "Checked by the admin"}, headers=bearer(admin)
    )
    assert edited.status_code == 200, edited.text

    response = await status_change(api, admin, created["registration_id"], "Approved")

    assert response.status_code == 200, response.text


async def test_a_rejection_without_if_match_right_after_an_edit_applies(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created, admin, _, _ = await reviewed_then_swapped(api, user_token)

    response = await status_change(api, admin, created["registration_id"], "Rejected")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Rejected"


async def test_a_rejection_with_a_stale_etag_is_412(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created, admin, reviewed_etag, _ = await reviewed_then_swapped(api, user_token)

    response = await status_change(api, admin, created["registration_id"], "Rejected", if_match=reviewed_etag)

    assert_error(response, 412, "PRECONDITION_FAILED")


async def test_if_match_star_or_a_list_holding_the_current_etag_applies(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    first, second = await create_registration(api, user_token()), await create_registration(api, user_token())

    star = await status_change(api, admin, first["registration_id"], "Approved", if_match="*")
    listed = await status_change(api, admin, second["registration_id"], "Approved", if_match='"7", W/"1"')

    assert (star.status_code, listed.status_code) == (200, 200)


async def test_if_match_that_this_service_never_issued_is_412(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created = await create_registration(api, user_token())

    for garbage in ("1", '"one"', '"99999999999999999999999"', '""'):
        response = await status_change(api, user_token(admin=True), created["registration_id"], "Approved", if_match=garbage)
        assert_error(response, 412, "PRECONDITION_FAILED")
