"""Every registration endpoint over real HTTP: happy paths and each error code of the contract's table,
and the calls the React frontend makes, exactly as it makes them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import httpx

from tests.support.registrations import (
    REGISTRATIONS,
    assert_error,
    bearer,
    create_registration,
    decide,
    marker,
    registration_body,
    unique_url,
    user_id_of,
)

TokenFactory = Callable[..., str]
JSON_HEADER = {"Content-Type": "application/json"}

REGISTRATION_FIELDS = {
    # The MCP Registry lifecycle of an approved registration (active / deprecated).
    "lifecycle",
    "status_message",
    "status_changed_at",
    "registration_id",
    "endpoint_url",
    "endpoint_name",
    "description",
    "owner_contact",
    "available_tools",
    "server_name",
    "version",
    "transport",
    "status",
    "submitter_id",
    "submitter_email",
    "submitter_display_name",
    "approver_id",
    "approver_email",
    "approver_display_name",
    "submitted_at",
    "approved_at",
    "created_at",
    "updated_at",
    "verification",
}


# ---------------------------------------------------------------- POST /api/registrations


async def test_create_returns_201_with_location_etag_and_a_pending_registration_of_the_caller(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    email = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    token = user_token(email=email, name="Alice Example")
    body = registration_body()

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(token))

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == REGISTRATION_FIELDS
    assert response.headers["Location"].endswith(f"/api/registrations/{created['registration_id']}")
    assert response.headers["ETag"].startswith('"')
    assert created["status"] == "Pending"
    assert created["endpoint_url"] == body["endpoint_url"]
    assert created["endpoint_name"] == body["endpoint_name"]
    assert created["description"] == body["description"]
    assert created["owner_contact"] == body["owner_contact"]
    assert created["available_tools"] == body["available_tools"]
    assert created["submitter_id"] == await user_id_of(api, token)
    assert created["submitter_email"] == email
    assert created["submitter_display_name"] == "Alice Example"
    assert created["approver_id"] is None and created["approved_at"] is None
    assert created["approver_email"] is None and created["approver_display_name"] is None
    assert datetime.fromisoformat(created["submitted_at"]).tzinfo is not None


async def test_create_location_header_serves_the_created_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    response = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert response.status_code == 201, response.text

    fetched = await api.get(response.headers["Location"], headers=bearer(token))

    assert fetched.status_code == 200
    assert fetched.json() == response.json()


async def test_create_stores_trimmed_url_name_and_contact(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    url = unique_url()
    response = await api.post(
        REGISTRATIONS,
        json=registration_body(endpoint_url=f"  {url}\t", endpoint_name="  Trimmed name  ", owner_contact=" ops "),
        headers=bearer(user_token()),
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["endpoint_url"] == url
    assert created["endpoint_name"] == "Trimmed name"
    assert created["owner_contact"] == "ops"


async def test_create_accepts_bare_string_tools_as_named_tools(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.post(
        REGISTRATIONS,
        json=registration_body(available_tools=["search", {"name": "fetch", "version": "2"}]),
        headers=bearer(user_token()),
    )

    assert response.status_code == 201, response.text
    assert response.json()["available_tools"] == [
        {"name": "search", "description": None, "version": None},
        {"name": "fetch", "description": None, "version": "2"},
    ]


async def test_create_accepts_empty_tools_and_no_description(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    body = registration_body(available_tools=[])
    del body["description"]

    response = await api.post(REGISTRATIONS, json=body, headers=bearer(user_token()))

    assert response.status_code == 201, response.text
    assert response.json()["available_tools"] == []
    assert response.json()["description"] is None


async def test_create_of_a_registered_url_returns_409_naming_the_existing_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    existing = await create_registration(api, user_token())

    response = await api.post(
        REGISTRATIONS,
        json=registration_body(endpoint_url=existing["endpoint_url"]),
        headers=bearer(user_token()),
    )

    body = assert_error(response, 409, "DUPLICATE_ENDPOINT")
    assert body["registration_id"] == existing["registration_id"]
    assert "endpoint_url" in body["field_errors"]


async def test_create_of_a_registered_url_with_surrounding_spaces_is_a_duplicate(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    existing = await create_registration(api, user_token())

    response = await api.post(
        REGISTRATIONS,
        json=registration_body(endpoint_url=f" {existing['endpoint_url']} "),
        headers=bearer(user_token()),
    )

    body = assert_error(response, 409, "DUPLICATE_ENDPOINT")
    assert body["registration_id"] == existing["registration_id"]


async def test_create_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.post(REGISTRATIONS, json=registration_body())

    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_create_with_an_invalid_field_returns_422_naming_it(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    response = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_name="x"), headers=bearer(user_token())
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {"endpoint_name"}


async def test_create_with_a_malformed_body_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.post(REGISTRATIONS, content=b"{not json", headers=bearer(user_token(), **JSON_HEADER))

    assert_error(response, 400, "INVALID_JSON")


async def test_create_with_a_text_body_returns_415(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.post(
        REGISTRATIONS, content=b"{}", headers=bearer(user_token(), **{"Content-Type": "text/plain"})
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_create_with_a_body_over_64_kib_returns_413(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.post(
        REGISTRATIONS, content=b" " * (64 * 1024 + 1), headers=bearer(user_token(), **JSON_HEADER)
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# ---------------------------------------------------------------- GET /api/registrations


async def test_list_by_search_returns_only_matching_rows_newest_first(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mark = marker()
    first = await create_registration(api, token, endpoint_name=f"First {mark}")
    second = await create_registration(api, token, description=f"about {mark}")
    await create_registration(api, token, endpoint_name="Unrelated")

    response = await api.get(REGISTRATIONS, params={"search": mark}, headers=bearer(token))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert page["limit"] == 100 and page["offset"] == 0
    assert [row["registration_id"] for row in page["results"]] == [
        second["registration_id"],
        first["registration_id"],
    ]


async def test_list_search_total_stays_exact_as_registrations_are_created_edited_decided_and_deleted(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    # The worker remembers filtered totals; every change must make the next list count again.
    token, admin = user_token(), user_token(admin=True)
    mark = marker()

    async def search_total(**params: str) -> int:
        response = await api.get(REGISTRATIONS, params={"search": mark, **params}, headers=bearer(token))
        assert response.status_code == 200, response.text
        total: int = response.json()["total"]
        assert total == len(response.json()["results"])
        return total

    first = await create_registration(api, token, endpoint_name=f"First {mark}")
    assert await search_total() == 1
    assert await search_total() == 1
    other = await create_registration(api, token, endpoint_name="Not yet matching")
    assert await search_total() == 1
    await create_registration(api, token, description=f"about {mark}")
    assert await search_total() == 2
    edited = await api.patch(
        f"{REGISTRATIONS}/{other['registration_id']}", json={"owner_contact": f"{mark}@example.com"}, headers=bearer(token)
    )
    assert edited.status_code == 200, edited.text
    assert await search_total() == 3
    assert await search_total(status="Approved") == 0
    assert (await decide(api, admin, first["registration_id"], "Approved")).status_code == 200
    assert await search_total(status="Approved") == 1
    assert await search_total(status="Pending") == 2
    deleted = await api.delete(f"{REGISTRATIONS}/{first['registration_id']}", headers=bearer(admin))
    assert deleted.status_code == 204, deleted.text
    assert await search_total() == 2
    assert await search_total(status="Approved") == 0


async def test_list_search_matches_name_description_contact_and_url_case_insensitively(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mark = marker()
    ids = {
        (await create_registration(api, token, endpoint_name=f"N {mark.upper()}"))["registration_id"],
        (await create_registration(api, token, description=f"d {mark}"))["registration_id"],
        (await create_registration(api, token, owner_contact=f"{mark}@example.com"))["registration_id"],
        (await create_registration(api, token, endpoint_url=f"https://{mark}.example.com/x"))["registration_id"],
    }

    response = await api.get(REGISTRATIONS, params={"search": mark.upper()}, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert {row["registration_id"] for row in response.json()["results"]} == ids
    assert response.json()["total"] == 4


async def test_list_search_treats_percent_underscore_and_backslash_literally(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mark = marker()
    literal = await create_registration(api, token, endpoint_name=f"{mark} 100%_off\\x")
    # These would match if % and _ were wildcards, or if \ escaped the next character.
    await create_registration(api, token, endpoint_name=f"{mark} 100 percent off x")
    await create_registration(api, token, endpoint_name=f"{mark} 100%Zoffx")

    response = await api.get(REGISTRATIONS, params={"search": f"{mark} 100%_off\\x"}, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert [row["registration_id"] for row in response.json()["results"]] == [literal["registration_id"]]


async def test_list_search_with_only_wildcard_characters_matches_them_literally(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mark = marker()
    submitter_id = await user_id_of(api, token)
    with_percent = await create_registration(api, token, endpoint_name=f"{mark} 50%")
    await create_registration(api, token, endpoint_name=f"{mark} fifty")

    response = await api.get(
        REGISTRATIONS, params={"search": "%", "submitter_id": submitter_id}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert [row["registration_id"] for row in response.json()["results"]] == [with_percent["registration_id"]]


async def test_list_by_submitter_returns_only_that_users_registrations(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mine = [await create_registration(api, token) for _ in range(3)]
    await create_registration(api, user_token())
    submitter_id = await user_id_of(api, token)

    response = await api.get(REGISTRATIONS, params={"submitter_id": submitter_id}, headers=bearer(user_token()))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 3
    assert [row["registration_id"] for row in page["results"]] == [r["registration_id"] for r in reversed(mine)]


async def test_list_by_status_and_submitter_combines_both_filters(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    admin = user_token(admin=True)
    approved = await create_registration(api, token)
    await create_registration(api, token)
    assert (await decide(api, admin, approved["registration_id"], "Approved")).status_code == 200
    submitter_id = await user_id_of(api, token)

    response = await api.get(
        REGISTRATIONS, params={"status": "Approved", "submitter_id": submitter_id}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 1
    assert [row["registration_id"] for row in page["results"]] == [approved["registration_id"]]
    assert page["results"][0]["status"] == "Approved"


async def test_list_by_status_only_returns_that_status_with_the_exact_total(
    own_api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token, admin = user_token(), user_token(admin=True)
    rejected = [await create_registration(own_api, token) for _ in range(2)]
    for registration in rejected:
        assert (await decide(own_api, admin, registration["registration_id"], "Rejected")).status_code == 200
    await create_registration(own_api, token)  # pending: not counted

    response = await own_api.get(REGISTRATIONS, params={"status": "Rejected", "limit": 500}, headers=bearer(token))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert {row["registration_id"] for row in page["results"]} == {row["registration_id"] for row in rejected}


async def test_list_without_filters_reports_the_exact_total_of_all_registrations(
    own_api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    for _ in range(3):
        await create_registration(own_api, token)

    response = await own_api.get(REGISTRATIONS, params={"limit": 1}, headers=bearer(token))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["limit"] == 1 and len(page["results"]) == 1
    assert page["total"] == 3


async def test_list_limit_and_offset_return_the_requested_page(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    mark = marker()
    created = [await create_registration(api, token, endpoint_name=f"{mark} {n}") for n in range(5)]
    newest_first = [r["registration_id"] for r in reversed(created)]

    response = await api.get(REGISTRATIONS, params={"search": mark, "limit": 2, "offset": 2}, headers=bearer(token))

    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    assert [row["registration_id"] for row in page["results"]] == newest_first[2:4]


async def test_list_offset_past_the_end_returns_the_total_and_no_rows(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mark = marker()
    await create_registration(api, token, endpoint_name=f"{mark} only")

    response = await api.get(REGISTRATIONS, params={"search": mark, "offset": 10}, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json() == {"total": 1, "limit": 100, "offset": 10, "results": []}


async def test_list_with_no_match_returns_total_zero(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(REGISTRATIONS, params={"search": marker()}, headers=bearer(user_token()))

    assert response.status_code == 200, response.text
    assert response.json() == {"total": 0, "limit": 100, "offset": 0, "results": []}


async def test_list_with_a_bad_query_parameter_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(REGISTRATIONS, params={"limit": "1001"}, headers=bearer(user_token()))

    body = assert_error(response, 400, "INVALID_QUERY")
    assert "limit" in body["field_errors"]


async def test_list_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.get(REGISTRATIONS)

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- GET /api/registrations/my


async def test_my_lists_only_the_callers_registrations_newest_first(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    mine = [await create_registration(api, token) for _ in range(2)]
    await create_registration(api, user_token())

    response = await api.get(f"{REGISTRATIONS}/my", headers=bearer(token))

    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 100, 0)
    assert [row["registration_id"] for row in page["results"]] == [r["registration_id"] for r in reversed(mine)]


async def test_my_filters_by_status(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    pending = await create_registration(api, token)
    approved = await create_registration(api, token)
    assert (await decide(api, user_token(admin=True), approved["registration_id"], "Approved")).status_code == 200

    response = await api.get(f"{REGISTRATIONS}/my", params={"status": "Pending"}, headers=bearer(token))

    assert response.status_code == 200, response.text
    assert [row["registration_id"] for row in response.json()["results"]] == [pending["registration_id"]]


async def test_my_ignores_a_submitter_id_parameter(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    other = user_token()
    await create_registration(api, other)
    mine = await create_registration(api, token)

    response = await api.get(
        f"{REGISTRATIONS}/my", params={"submitter_id": await user_id_of(api, other)}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert [row["registration_id"] for row in response.json()["results"]] == [mine["registration_id"]]


async def test_my_for_a_user_without_registrations_is_empty(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(f"{REGISTRATIONS}/my", headers=bearer(user_token()))

    assert response.status_code == 200, response.text
    assert response.json() == {"total": 0, "limit": 100, "offset": 0, "results": []}


async def test_my_with_a_bad_status_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(f"{REGISTRATIONS}/my", params={"status": "Done"}, headers=bearer(user_token()))

    body = assert_error(response, 400, "INVALID_QUERY")
    assert "status" in body["field_errors"]


async def test_my_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{REGISTRATIONS}/my")

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- GET /api/registrations/by-url


async def test_by_url_finds_a_url_with_query_string_and_special_characters(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    url = f"https://mcp-{uuid.uuid4().hex[:8]}.example.com/a b?x=1&y=%2F+z".replace(" ", "%20")
    created = await create_registration(api, token, endpoint_url=url)

    # encodeURIComponent(url), as the frontend and CI pipelines build it.
    response = await api.get(f"{REGISTRATIONS}/by-url?endpoint_url={quote(url, safe='')}", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json()["registration_id"] == created["registration_id"]
    assert response.json()["endpoint_url"] == url
    assert response.headers["ETag"].startswith('"')


async def test_by_url_is_an_exact_match_not_a_prefix(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.get(
        f"{REGISTRATIONS}/by-url", params={"endpoint_url": created["endpoint_url"][:-1]}, headers=bearer(token)
    )

    body = assert_error(response, 404, "NOT_FOUND")
    assert body["detail"] == "No registration found for this endpoint URL"


async def test_by_url_of_an_unknown_url_returns_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(
        f"{REGISTRATIONS}/by-url", params={"endpoint_url": unique_url()}, headers=bearer(user_token())
    )

    body = assert_error(response, 404, "NOT_FOUND")
    assert body["detail"] == "No registration found for this endpoint URL"


async def test_by_url_without_the_parameter_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(f"{REGISTRATIONS}/by-url", headers=bearer(user_token()))

    body = assert_error(response, 400, "INVALID_QUERY")
    assert "endpoint_url" in body["field_errors"]


async def test_by_url_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{REGISTRATIONS}/by-url", params={"endpoint_url": unique_url()})

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- GET /api/registrations/{id}


async def test_get_by_id_returns_the_registration_and_its_etag(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text

    response = await api.get(f"{REGISTRATIONS}/{create.json()['registration_id']}", headers=bearer(user_token()))

    assert response.status_code == 200, response.text
    assert response.json() == create.json()
    assert response.headers["ETag"] == create.headers["ETag"]


async def test_get_by_id_of_an_unknown_registration_returns_404(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    response = await api.get(f"{REGISTRATIONS}/{uuid.uuid4()}", headers=bearer(user_token()))

    assert_error(response, 404, "NOT_FOUND")


async def test_get_by_id_with_a_non_uuid_id_returns_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.get(f"{REGISTRATIONS}/not-a-uuid", headers=bearer(user_token()))

    assert_error(response, 404, "NOT_FOUND")


async def test_get_by_id_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{REGISTRATIONS}/{uuid.uuid4()}")

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- PATCH /api/registrations/{id}


async def test_submitter_can_edit_a_pending_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        json={"endpoint_name": "Renamed tools", "available_tools": ["one", "two"]},
        headers=bearer(token),
    )

    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["endpoint_name"] == "Renamed tools"
    assert [tool["name"] for tool in edited["available_tools"]] == ["one", "two"]
    assert edited["description"] == created["description"]
    assert edited["status"] == "Pending"
    assert datetime.fromisoformat(edited["updated_at"]) > datetime.fromisoformat(created["updated_at"])


async def test_edit_changes_the_etag(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text

    response = await api.patch(
        f"{REGISTRATIONS}/{create.json()['registration_id']}", json={"description": "New"}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] != create.headers["ETag"]
    fetched = await api.get(f"{REGISTRATIONS}/{create.json()['registration_id']}", headers=bearer(token))
    assert fetched.headers["ETag"] == response.headers["ETag"]


async def test_edit_with_the_current_etag_in_if_match_succeeds(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text

    response = await api.patch(
        f"{REGISTRATIONS}/{create.json()['registration_id']}",
        json={"description": "With a precondition"},
        headers=bearer(token, **{"If-Match": create.headers["ETag"]}),
    )

    assert response.status_code == 200, response.text
    assert response.json()["description"] == "With a precondition"


async def test_edit_with_a_stale_if_match_returns_412_and_changes_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text
    url = f"{REGISTRATIONS}/{create.json()['registration_id']}"
    first = await api.patch(url, json={"description": "First edit"}, headers=bearer(token))
    assert first.status_code == 200, first.text

    response = await api.patch(
        url, json={"description": "Lost update"}, headers=bearer(token, **{"If-Match": create.headers["ETag"]})
    )

    assert_error(response, 412, "PRECONDITION_FAILED")
    current = await api.get(url, headers=bearer(token))
    assert current.json()["description"] == "First edit"
    assert current.headers["ETag"] == first.headers["ETag"]


async def test_edit_with_if_match_star_succeeds(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        json={"owner_contact": "someone-else"},
        headers=bearer(token, **{"If-Match": "*"}),
    )

    assert response.status_code == 200, response.text
    assert response.json()["owner_contact"] == "someone-else"


async def test_edit_that_changes_nothing_keeps_the_etag(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(token))
    assert create.status_code == 201, create.text

    response = await api.patch(
        f"{REGISTRATIONS}/{create.json()['registration_id']}",
        json={"endpoint_name": create.json()["endpoint_name"]},
        headers=bearer(token),
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == create.headers["ETag"]
    assert response.json() == create.json()


async def test_edit_can_clear_the_description(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"description": None}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert response.json()["description"] is None


async def test_edit_can_change_the_url(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)
    new_url = unique_url("moved")

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_url": new_url}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert response.json()["endpoint_url"] == new_url
    found = await api.get(f"{REGISTRATIONS}/by-url", params={"endpoint_url": new_url}, headers=bearer(token))
    assert found.json()["registration_id"] == created["registration_id"]


async def test_admin_can_edit_an_approved_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Approved")).status_code == 200

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_name": "Admin edit"}, headers=bearer(admin)
    )

    assert response.status_code == 200, response.text
    assert response.json()["endpoint_name"] == "Admin edit"
    assert response.json()["status"] == "Approved"


async def test_submitter_cannot_edit_an_approved_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)
    assert (await decide(api, user_token(admin=True), created["registration_id"], "Approved")).status_code == 200

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_name": "Sneaky"}, headers=bearer(token)
    )

    assert_error(response, 403, "FORBIDDEN")


async def test_submitter_cannot_edit_a_rejected_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)
    assert (await decide(api, user_token(admin=True), created["registration_id"], "Rejected")).status_code == 200

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_name": "Second try"}, headers=bearer(token)
    )

    assert_error(response, 403, "FORBIDDEN")


async def test_another_user_cannot_edit_a_pending_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created = await create_registration(api, user_token())

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_name": "Hijack"}, headers=bearer(user_token())
    )

    assert_error(response, 403, "FORBIDDEN")
    current = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(user_token()))
    assert current.json()["endpoint_name"] == created["endpoint_name"]


async def test_edit_of_an_unknown_registration_returns_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.patch(
        f"{REGISTRATIONS}/{uuid.uuid4()}", json={"endpoint_name": "Ghost"}, headers=bearer(user_token(admin=True))
    )

    assert_error(response, 404, "NOT_FOUND")


async def test_edit_to_a_registered_url_returns_409_naming_the_other_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    other = await create_registration(api, user_token())
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}",
        json={"endpoint_url": other["endpoint_url"]},
        headers=bearer(token),
    )

    body = assert_error(response, 409, "DUPLICATE_ENDPOINT")
    assert body["registration_id"] == other["registration_id"]
    current = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(token))
    assert current.json()["endpoint_url"] == created["endpoint_url"]


async def test_edit_with_an_empty_object_returns_422(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(f"{REGISTRATIONS}/{created['registration_id']}", json={}, headers=bearer(token))

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["field_errors"]


async def test_edit_with_an_invalid_field_returns_422_naming_it(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_url": "ftp://x.example.com"}, headers=bearer(token)
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {"endpoint_url"}


async def test_edit_setting_a_required_field_to_null_returns_422(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"owner_contact": None}, headers=bearer(token)
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {"owner_contact"}


async def test_edit_of_status_through_the_metadata_route_returns_422(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"status": "Approved"}, headers=bearer(token)
    )

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["field_errors"] == {"status": "Unknown field"}


async def test_edit_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.patch(f"{REGISTRATIONS}/{uuid.uuid4()}", json={"endpoint_name": "Anon"})

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- PATCH /api/registrations/{id}/status


async def test_admin_approves_a_pending_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    admin = user_token(admin=True, email=email, name="Ada Admin")
    create = await api.post(REGISTRATIONS, json=registration_body(), headers=bearer(user_token()))
    assert create.status_code == 201, create.text

    response = await decide(api, admin, create.json()["registration_id"], "Approved")

    assert response.status_code == 200, response.text
    approved = response.json()
    assert approved["status"] == "Approved"
    assert approved["approver_id"] == await user_id_of(api, admin)
    assert approved["approver_email"] == email
    assert approved["approver_display_name"] == "Ada Admin"
    assert datetime.fromisoformat(approved["approved_at"]) >= datetime.fromisoformat(approved["submitted_at"])
    assert response.headers["ETag"] != create.headers["ETag"]


async def test_admin_rejects_a_pending_registration_with_a_reason(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())

    response = await decide(api, admin, created["registration_id"], "Rejected", reason="Not an MCP server")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Rejected"
    assert response.json()["approver_id"] == await user_id_of(api, admin)


async def test_deciding_an_approved_registration_returns_409(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Approved")).status_code == 200

    response = await decide(api, admin, created["registration_id"], "Rejected")

    assert_error(response, 409, "INVALID_STATE_TRANSITION")
    current = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))
    assert current.json()["status"] == "Approved"


async def test_deciding_a_rejected_registration_returns_409(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await decide(api, admin, created["registration_id"], "Rejected")).status_code == 200

    response = await decide(api, admin, created["registration_id"], "Approved")

    assert_error(response, 409, "INVALID_STATE_TRANSITION")


async def test_non_admin_cannot_decide_even_their_own_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await decide(api, token, created["registration_id"], "Approved")

    assert_error(response, 403, "FORBIDDEN")
    current = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(token))
    assert current.json()["status"] == "Pending"


async def test_deciding_an_unknown_registration_returns_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await decide(api, user_token(admin=True), str(uuid.uuid4()), "Approved")

    assert_error(response, 404, "NOT_FOUND")


async def test_deciding_with_status_pending_returns_422(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created = await create_registration(api, user_token())

    response = await decide(api, user_token(admin=True), created["registration_id"], "Pending")

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {"status"}


async def test_deciding_with_a_reason_over_1000_characters_returns_422(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created = await create_registration(api, user_token())

    response = await decide(api, user_token(admin=True), created["registration_id"], "Rejected", reason="r" * 1001)

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert set(body["field_errors"]) == {"reason"}


async def test_deciding_without_a_body_returns_400(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created = await create_registration(api, user_token())

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status",
        headers=bearer(user_token(admin=True), **JSON_HEADER),
    )

    assert_error(response, 400, "INVALID_JSON")


async def test_deciding_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.patch(f"{REGISTRATIONS}/{uuid.uuid4()}/status", json={"status": "Approved"})

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- DELETE /api/registrations/{id}


async def test_admin_deletes_a_registration(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())

    response = await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))

    assert response.status_code == 204, response.text
    assert response.content == b""
    gone = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))
    assert_error(gone, 404, "NOT_FOUND")


async def test_deleted_url_can_be_registered_again(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))).status_code == 204

    response = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_url=created["endpoint_url"]), headers=bearer(user_token())
    )

    assert response.status_code == 201, response.text
    assert response.json()["registration_id"] != created["registration_id"]


async def test_non_admin_cannot_delete_their_own_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(token))

    assert_error(response, 403, "FORBIDDEN")
    assert (await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(token))).status_code == 200


async def test_deleting_an_unknown_registration_returns_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    response = await api.delete(f"{REGISTRATIONS}/{uuid.uuid4()}", headers=bearer(user_token(admin=True)))

    assert_error(response, 404, "NOT_FOUND")


async def test_deleting_twice_returns_404_the_second_time(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())
    assert (await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))).status_code == 204

    response = await api.delete(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(admin))

    assert_error(response, 404, "NOT_FOUND")


async def test_deleting_without_a_token_returns_401(api: httpx.AsyncClient) -> None:
    response = await api.delete(f"{REGISTRATIONS}/{uuid.uuid4()}")

    assert_error(response, 401, "UNAUTHENTICATED")


# ---------------------------------------------------------------- the frontend's own calls


async def test_frontend_lists_approved_registrations(own_api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(own_api, token)
    assert (await decide(own_api, user_token(admin=True), created["registration_id"], "Approved")).status_code == 200
    await create_registration(own_api, token)  # pending: not listed

    response = await own_api.get(f"{REGISTRATIONS}?status=Approved&limit=100", headers=bearer(token, **JSON_HEADER))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["limit"] == 100 and page["offset"] == 0
    assert page["total"] == 1
    assert [(row["registration_id"], row["status"]) for row in page["results"]] == [
        (created["registration_id"], "Approved")
    ]


async def test_frontend_lists_pending_registrations(own_api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token(admin=True)
    pending = [await create_registration(own_api, user_token()) for _ in range(2)]
    approved = await create_registration(own_api, user_token())
    assert (await decide(own_api, token, approved["registration_id"], "Approved")).status_code == 200

    response = await own_api.get(f"{REGISTRATIONS}?status=Pending&limit=100", headers=bearer(token, **JSON_HEADER))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert {row["status"] for row in page["results"]} == {"Pending"}
    assert {row["registration_id"] for row in page["results"]} == {row["registration_id"] for row in pending}


async def test_frontend_lists_my_registrations(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.get(f"{REGISTRATIONS}/my?limit=100", headers=bearer(token, **JSON_HEADER))

    assert response.status_code == 200, response.text
    assert [row["registration_id"] for row in response.json()["results"]] == [created["registration_id"]]


async def test_frontend_looks_up_by_encoded_url(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    token = user_token()
    created = await create_registration(api, token, endpoint_url=f"{unique_url()}?tenant=a&mode=b")

    response = await api.get(
        f"{REGISTRATIONS}/by-url?endpoint_url={quote(created['endpoint_url'], safe='')}",
        headers=bearer(token, **JSON_HEADER),
    )

    assert response.status_code == 200, response.text
    assert response.json()["registration_id"] == created["registration_id"]


async def test_frontend_rejects_with_its_reason(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    created = await create_registration(api, user_token())

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}/status",
        content=b'{"status":"Rejected","reason":"Rejected by admin"}',
        headers=bearer(user_token(admin=True), **JSON_HEADER),
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Rejected"


async def test_frontend_deletes_with_a_json_content_type_and_no_body(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    created = await create_registration(api, user_token())

    response = await api.delete(
        f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(user_token(admin=True), **JSON_HEADER)
    )

    assert response.status_code == 204, response.text


async def test_frontend_gets_one_registration_with_a_json_content_type_and_no_body(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    created = await create_registration(api, token)

    response = await api.get(f"{REGISTRATIONS}/{created['registration_id']}", headers=bearer(token, **JSON_HEADER))

    assert response.status_code == 200, response.text
    assert response.json()["registration_id"] == created["registration_id"]


async def test_frontend_reads_the_signed_in_user(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    email = f"frontend-{uuid.uuid4().hex[:8]}@example.com"
    token = user_token(email=email)

    response = await api.get("/api/users/me", headers=bearer(token, **JSON_HEADER))

    assert response.status_code == 200, response.text
    assert response.json()["email"] == email


async def test_frontend_reads_the_audit_log_of_a_registration(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin = user_token(admin=True)
    created = await create_registration(api, user_token())

    response = await api.get(
        f"/api/audit-logs?registration_id={created['registration_id']}&limit=50&offset=0",
        headers=bearer(admin, **JSON_HEADER),
    )

    assert response.status_code == 200, response.text
    assert [entry["action"] for entry in response.json()["results"]] == ["Created"]


async def test_frontend_preflight_for_a_patch_needs_no_token(api: httpx.AsyncClient) -> None:
    response = await api.options(
        f"{REGISTRATIONS}/{uuid.uuid4()}/status",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    assert response.status_code in (200, 204), response.text
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"].upper()
