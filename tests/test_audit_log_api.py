"""The audit log over real HTTP: the entry each change writes, and `GET /api/audit-logs` with its filters,
bounds, order and joins (admins only)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.registrations import (
    AUDIT_LOGS,
    REGISTRATIONS,
    assert_error,
    audit_entries,
    bearer,
    create_registration,
    decide,
    registration_body,
    user_id_of,
)

TokenFactory = Callable[..., str]


def ts(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"])


async def trail_of(api: httpx.AsyncClient, admin: str, registration_id: str) -> list[dict[str, Any]]:
    page = await audit_entries(api, admin, registration_id=registration_id)
    results: list[dict[str, Any]] = page["results"]
    return results


async def lifecycle(api: httpx.AsyncClient, user_token: TokenFactory) -> tuple[str, str, list[dict[str, Any]]]:
    """A registration created, edited, approved and deleted; returns (admin token, id, its trail newest first)."""
    admin = user_token(admin=True)
    token = user_token()
    created = await create_registration(api, token)
    registration_id = created["registration_id"]
    edit = await api.patch(f"{REGISTRATIONS}/{registration_id}", json={"endpoint_name": "Edited"}, headers=bearer(token))
    assert edit.status_code == 200, edit.text
    approval = await decide(api, admin, registration_id, "Approved", reason="ok", if_match=edit.headers["ETag"])
    assert approval.status_code == 200, approval.text
    assert (await api.delete(f"{REGISTRATIONS}/{registration_id}", headers=bearer(admin))).status_code == 204
    trail = await trail_of(api, admin, registration_id)
    assert [entry["action"] for entry in trail] == ["Deleted", "Approved", "Updated", "Created"]
    return admin, registration_id, trail


# ---------------------------------------------------------------- the entry each change writes


async def test_create_writes_a_created_entry_with_the_initial_values(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    email = f"submitter-{uuid.uuid4().hex[:8]}@example.com"
    token = user_token(email=email, name="Sam Submitter")
    body = registration_body(available_tools=["search", {"name": "fetch", "description": "Fetch a page"}])
    created = await create_registration(api, token, **body)

    trail = await trail_of(api, user_token(admin=True), created["registration_id"])

    assert len(trail) == 1
    entry = trail[0]
    assert entry["action"] == "Created"
    assert entry["registration_id"] == created["registration_id"]
    assert entry["user_id"] == created["submitter_id"]
    assert (entry["user_email"], entry["user_display_name"]) == (email, "Sam Submitter")
    assert (entry["previous_status"], entry["new_status"]) == (None, "Pending")
    assert entry["metadata"] == {
        "endpoint_url": body["endpoint_url"],
        "endpoint_name": body["endpoint_name"],
        "description": body["description"],
        "owner_contact": body["owner_contact"],
        "available_tools": [{"name": "search"}, {"name": "fetch", "description": "Fetch a page"}],
        "server_name": created["server_name"],
        "version": created["version"],
        "transport": created["transport"],
    }
    assert ts(entry).tzinfo is not None


async def test_approval_writes_an_approved_entry_with_the_reason(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True, name="Ada Admin")
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Approved", reason="Meets policy")).status_code == 200

    entry = (await trail_of(api, admin, created["registration_id"]))[0]

    assert entry["action"] == "Approved"
    assert entry["user_id"] == await user_id_of(api, admin)
    assert entry["user_display_name"] == "Ada Admin"
    assert (entry["previous_status"], entry["new_status"]) == ("Pending", "Approved")
    # The endpoint was never probed: the approval records that (see tests/test_verification_api.py).
    assert entry["metadata"] == {"reason": "Meets policy", "verification": "unverified"}


async def test_approval_without_a_reason_records_only_the_verification_state(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Approved")).status_code == 200

    entry = (await trail_of(api, admin, created["registration_id"]))[0]

    assert entry["action"] == "Approved"
    assert entry["metadata"] == {"verification": "unverified"}


async def test_rejection_writes_a_rejected_entry_with_the_reason(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Rejected", reason="Rejected by admin")).status_code == 200

    entry = (await trail_of(api, admin, created["registration_id"]))[0]

    assert entry["action"] == "Rejected"
    assert (entry["previous_status"], entry["new_status"]) == ("Pending", "Rejected")
    assert entry["metadata"] == {"reason": "Rejected by admin"}


async def test_edit_writes_an_updated_entry_with_before_and_after_of_changed_fields_only(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token, available_tools=["a"])
    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        json={
            "endpoint_name": "New name",
            "description": created["description"],  # unchanged: not in the entry
            "available_tools": ["a", "b"],
        },
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text

    entry = (await trail_of(api, user_token(admin=True), created["registration_id"]))[0]

    assert entry["action"] == "Updated"
    assert entry["user_id"] == created["submitter_id"]
    assert (entry["previous_status"], entry["new_status"]) == ("Pending", "Pending")
    assert entry["metadata"] == {
        "changes": {
            "endpoint_name": {"before": created["endpoint_name"], "after": "New name"},
            "available_tools": {"before": [{"name": "a"}], "after": [{"name": "a"}, {"name": "b"}]},
        }
    }


async def test_edit_by_an_admin_is_attributed_to_the_admin(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Approved")).status_code == 200
    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"description": None}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text

    entry = (await trail_of(api, admin, created["registration_id"]))[0]

    assert entry["action"] == "Updated"
    assert entry["user_id"] == await user_id_of(api, admin)
    assert (entry["previous_status"], entry["new_status"]) == ("Approved", "Approved")
    assert entry["metadata"] == {"changes": {"description": {"before": created["description"], "after": None}}}


async def test_edit_that_changes_nothing_writes_no_entry(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)
    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        json={"owner_contact": created["owner_contact"]},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text

    trail = await trail_of(api, user_token(admin=True), created["registration_id"])

    assert [entry["action"] for entry in trail] == ["Created"]


async def test_delete_writes_a_deleted_entry_with_a_snapshot(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Rejected")).status_code == 200
    assert (await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))).status_code == 204

    entry = (await trail_of(api, admin, created["registration_id"]))[0]

    assert entry["action"] == "Deleted"
    assert entry["user_id"] == await user_id_of(api, admin)
    assert (entry["previous_status"], entry["new_status"]) == ("Rejected", None)
    snapshot = entry["metadata"]["snapshot"]
    for field in ("registration_id", "endpoint_url", "endpoint_name", "description", "owner_contact", "submitter_id"):
        assert snapshot[field] == created[field], field
    assert snapshot["available_tools"] == [{"name": "get_forecast", "description": "Forecast for a city", "version": "1.2"}]
    assert snapshot["status"] == "Rejected"
    assert snapshot["approver_id"] == await user_id_of(api, admin)


async def test_trail_of_a_deleted_registration_stays_queryable_newest_first(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    _, registration_id, trail = await lifecycle(api, user_token)

    assert [entry["action"] for entry in trail] == ["Deleted", "Approved", "Updated", "Created"]
    assert {entry["registration_id"] for entry in trail} == {registration_id}
    assert [ts(entry) for entry in trail] == sorted((ts(entry) for entry in trail), reverse=True)


# ---------------------------------------------------------------- filters


async def test_filter_by_registration_id_alone(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    await create_registration(api, user_token())

    page = await audit_entries(api, admin, registration_id=created["registration_id"])

    assert page["total"] == 1
    assert [entry["registration_id"] for entry in page["results"]] == [created["registration_id"]]


async def test_filter_by_user_id_alone_returns_that_users_actions_across_registrations(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    token = user_token()
    first = await create_registration(api, token)
    second = await create_registration(api, token)
    assert (await decide(api, admin, first["registration_id"], "Approved")).status_code == 200

    page = await audit_entries(api, admin, user_id=first["submitter_id"])

    assert page["total"] == 2
    assert [(entry["registration_id"], entry["action"]) for entry in page["results"]] == [
        (second["registration_id"], "Created"),
        (first["registration_id"], "Created"),
    ]


async def test_filter_by_action_alone_returns_only_that_action_with_the_exact_total(
    own_api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    _, deleted_id, _ = await lifecycle(own_api, user_token)
    admin, kept_id, _ = await lifecycle(own_api, user_token)  # a second Deleted entry
    await create_registration(own_api, user_token())  # a Created entry: not listed

    page = await audit_entries(own_api, admin, action="Deleted", limit=200)

    assert page["total"] == 2
    assert [(entry["registration_id"], entry["action"]) for entry in page["results"]] == [
        (kept_id, "Deleted"),
        (deleted_id, "Deleted"),
    ]


async def test_filter_by_from_alone_includes_the_entry_at_the_bound(
    own_api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin, registration_id, trail = await lifecycle(own_api, user_token)
    bound = trail[1]  # the Approved entry: Approved and Deleted are at or after it, Updated and Created before

    page = await audit_entries(own_api, admin, **{"from": bound["timestamp"], "limit": 200})

    assert page["total"] == 2
    assert [entry["log_id"] for entry in page["results"]] == [trail[0]["log_id"], bound["log_id"]]


async def test_filter_by_to_alone_includes_the_entry_at_the_bound(
    own_api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin, _, trail = await lifecycle(own_api, user_token)
    bound = trail[-2]  # the Updated entry: Updated and Created are at or before it

    page = await audit_entries(own_api, admin, to=bound["timestamp"])

    assert page["total"] == 2
    assert [entry["log_id"] for entry in page["results"]] == [bound["log_id"], trail[-1]["log_id"]]


async def test_filter_by_registration_and_action_combined(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin, registration_id, trail = await lifecycle(api, user_token)

    page = await audit_entries(api, admin, registration_id=registration_id, action="Updated")

    assert page["total"] == 1
    assert [entry["log_id"] for entry in page["results"]] == [trail[2]["log_id"]]


async def test_filter_by_user_and_action_combined(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    token = user_token()
    created = await create_registration(api, token)
    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_name": "Changed"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text

    page = await audit_entries(api, admin, user_id=created["submitter_id"], action="Updated")

    assert page["total"] == 1
    assert page["results"][0]["action"] == "Updated"
    assert page["results"][0]["registration_id"] == created["registration_id"]


async def test_filter_by_registration_and_date_window_returns_the_entries_inside_inclusive(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin, registration_id, trail = await lifecycle(api, user_token)
    deleted, approved, updated, created = trail

    page = await audit_entries(
        api, admin, registration_id=registration_id, **{"from": updated["timestamp"], "to": approved["timestamp"]}
    )

    assert page["total"] == 2
    assert [entry["log_id"] for entry in page["results"]] == [approved["log_id"], updated["log_id"]]


async def test_from_equal_to_to_returns_the_entry_at_that_instant(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin, registration_id, trail = await lifecycle(api, user_token)
    approved = trail[1]

    page = await audit_entries(
        api, admin, registration_id=registration_id, **{"from": approved["timestamp"], "to": approved["timestamp"]}
    )

    assert [entry["log_id"] for entry in page["results"]] == [approved["log_id"]]


async def test_date_only_bounds_include_the_whole_day(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    entry = (await trail_of(api, admin, created["registration_id"]))[0]
    day = ts(entry).astimezone(UTC).date().isoformat()

    page = await audit_entries(api, admin, registration_id=created["registration_id"], **{"from": day, "to": day})

    assert [e["log_id"] for e in page["results"]] == [entry["log_id"]]


async def test_the_day_before_excludes_todays_entries(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    entry = (await trail_of(api, admin, created["registration_id"]))[0]
    day_before = (ts(entry).astimezone(UTC).date() - timedelta(days=1)).isoformat()

    page = await audit_entries(api, admin, registration_id=created["registration_id"], to=day_before)

    assert page["total"] == 0 and page["results"] == []


async def test_bounds_with_an_offset_are_honoured(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    entry = (await trail_of(api, admin, created["registration_id"]))[0]
    in_plus_two = ts(entry).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=2)
    bound = in_plus_two.isoformat() + "+02:00"  # the same instant, written in another offset

    page = await audit_entries(api, admin, registration_id=created["registration_id"], **{"from": bound, "to": bound})

    assert [e["log_id"] for e in page["results"]] == [entry["log_id"]]


async def test_bounds_without_an_offset_are_read_as_utc(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    entry = (await trail_of(api, admin, created["registration_id"]))[0]
    naive = ts(entry).astimezone(UTC).replace(tzinfo=None).isoformat()

    page = await audit_entries(api, admin, registration_id=created["registration_id"], **{"from": naive, "to": naive})

    assert [e["log_id"] for e in page["results"]] == [entry["log_id"]]


async def test_filter_by_an_unknown_registration_returns_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    page = await audit_entries(api, user_token(admin=True), registration_id=str(uuid.uuid4()))

    assert page == {"total": 0, "limit": 50, "offset": 0, "results": []}


# ---------------------------------------------------------------- paging and order


async def test_limit_and_offset_page_a_trail_newest_first(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin, registration_id, trail = await lifecycle(api, user_token)

    pages = [
        await audit_entries(api, admin, registration_id=registration_id, limit=1, offset=offset) for offset in range(5)
    ]

    assert [page["total"] for page in pages] == [4] * 5
    assert [entry["log_id"] for page in pages for entry in page["results"]] == [entry["log_id"] for entry in trail]
    assert pages[4]["results"] == []
    assert (pages[2]["limit"], pages[2]["offset"]) == (1, 2)


async def test_default_limit_is_50(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    page = await audit_entries(api, user_token(admin=True))

    assert (page["limit"], page["offset"]) == (50, 0)
    assert len(page["results"]) <= 50


AUDIT_QUERIES: list[tuple[str, dict[str, str], int]] = [
    ("limit_0", {"limit": "0"}, 400),
    ("limit_1", {"limit": "1"}, 200),
    ("limit_200", {"limit": "200"}, 200),
    ("limit_201", {"limit": "201"}, 400),
    ("limit_not_a_number", {"limit": "all"}, 400),
    ("offset_minus_1", {"offset": "-1"}, 400),
    ("offset_0", {"offset": "0"}, 200),
    ("offset_past_bigint", {"offset": "9223372036854775808"}, 400),
    ("registration_id_bad_uuid", {"registration_id": "42"}, 400),
    ("user_id_bad_uuid", {"user_id": "me"}, 400),
    ("action_bad", {"action": "Viewed"}, 400),
    ("action_lowercase", {"action": "created"}, 400),
    ("from_bad_date", {"from": "yesterday"}, 400),
    ("to_bad_date", {"to": "2025-13-01"}, 400),
    ("from_impossible_day", {"from": "2025-02-30T00:00:00Z"}, 400),
    ("to_impossible_date", {"to": "2025-02-30"}, 400),
    ("from_past_year_9999_in_utc", {"from": "9999-12-31T23:00:00-05:00"}, 400),
    ("to_before_year_1_in_utc", {"to": "0001-01-01T00:00:00+05:00"}, 400),
    ("to_last_representable_day", {"to": "9999-12-31"}, 200),
    ("from_first_representable_day", {"from": "0001-01-01"}, 200),
]


@pytest.mark.parametrize(("case", "params", "status"), AUDIT_QUERIES, ids=[case for case, _, _ in AUDIT_QUERIES])
async def test_audit_query_parameter_bounds(
    api: httpx.AsyncClient, user_token: TokenFactory, case: str, params: dict[str, str], status: int
) -> None:
    response = await api.get(AUDIT_LOGS, params=params, headers=bearer(user_token(admin=True)))

    assert response.status_code == status, response.text
    if status == 400:
        body = assert_error(response, 400, "INVALID_QUERY")
        assert set(body["field_errors"]) == set(params)
    else:
        assert response.json()["limit"] == int(params.get("limit", 50))


async def test_to_before_from_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(
        AUDIT_LOGS,
        params={"from": "2025-11-11T10:00:00Z", "to": "2025-11-11T09:59:59.999999Z"},
        headers=bearer(user_token(admin=True)),
    )

    body = assert_error(response, 400, "INVALID_QUERY")
    assert set(body["field_errors"]) == {"to"}


async def test_to_before_from_as_dates_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(
        AUDIT_LOGS, params={"from": "2025-11-12", "to": "2025-11-11"}, headers=bearer(user_token(admin=True))
    )

    body = assert_error(response, 400, "INVALID_QUERY")
    assert set(body["field_errors"]) == {"to"}


async def test_to_equal_to_from_as_one_date_is_accepted(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(
        AUDIT_LOGS, params={"from": "2025-11-11", "to": "2025-11-11"}, headers=bearer(user_token(admin=True))
    )

    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- access


async def test_non_admin_gets_403(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(AUDIT_LOGS, headers=bearer(user_token()))

    assert_error(response, 403, "FORBIDDEN")


async def test_non_admin_gets_403_even_for_their_own_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.get(AUDIT_LOGS, params={"registration_id": created["registration_id"]}, headers=bearer(token))

    assert_error(response, 403, "FORBIDDEN")


async def test_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.get(AUDIT_LOGS)

    assert_error(response, 401, "UNAUTHENTICATED")
