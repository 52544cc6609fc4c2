"""The MCP Registry as a living catalogue: deprecation, tombstones, exact incremental sync, conditional GET."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from tests.support.issuer import bearer
from tests.support.mcp_registry import SERVERS, assert_valid_server, official
from tests.support.registrations import REGISTRATIONS, assert_error, audit_entries, create_registration, decide

TokenFactory = Callable[..., str]


def namespace() -> str:
    return f"com.example.mcp.life-{uuid.uuid4().hex[:10]}"


async def approved(api: httpx.AsyncClient, user_token: TokenFactory, name: str) -> dict[str, Any]:
    created = await create_registration(api, user_token(), server_name=name, endpoint_name=f"Server {name[-12:]}")
    response = await decide(api, user_token(admin=True), created["registration_id"], "Approved")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def lifecycle(api: httpx.AsyncClient, admin: str, registration_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.patch(f"{REGISTRATIONS}/{registration_id}/lifecycle", json=body, headers=bearer(admin))


def assert_valid(entry: dict[str, Any]) -> None:
    assert_valid_server(entry["server"])
    assert official(entry)["status"] in {"active", "deprecated", "deleted"}


async def latest(api: httpx.AsyncClient, name: str, **params: str) -> httpx.Response:
    return await api.get(f"{SERVERS}/{quote(name, safe='')}/versions/latest", params=params)


async def listed(api: httpx.AsyncClient, search: str, **params: str) -> dict[str, dict[str, Any]]:
    response = await api.get(SERVERS, params={"search": search, "limit": "100", **params})
    assert response.status_code == 200, response.text
    return {entry["server"]["name"]: entry for entry in response.json()["servers"]}


# ---------------------------------------------------------------- deprecation


async def test_a_deprecated_server_stays_served_with_its_message_and_when(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns = namespace()
    server = await approved(api, user_token, f"{ns}/old")

    response = await lifecycle(api, user_token(admin=True), server["registration_id"], {"status": "deprecated", "message": f"Use {ns}/new instead"})

    assert response.status_code == 200, response.text
    assert response.json()["lifecycle"] == "deprecated" and response.json()["status_message"] == f"Use {ns}/new instead"
    entry = (await latest(api, server["server_name"])).json()
    assert_valid(entry)
    assert official(entry)["status"] == "deprecated"
    assert official(entry)["statusMessage"] == f"Use {ns}/new instead"
    assert official(entry)["statusChangedAt"].startswith(response.json()["status_changed_at"][:19])
    assert server["server_name"] in await listed(api, ns)


async def test_undoing_a_deprecation_makes_the_server_active_without_a_message(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    admin, server = user_token(admin=True), await approved(api, user_token, f"{namespace()}/x")
    await lifecycle(api, admin, server["registration_id"], {"status": "deprecated", "message": "Going away"})

    response = await lifecycle(api, admin, server["registration_id"], {"status": "active"})

    assert response.status_code == 200, response.text
    entry = (await latest(api, server["server_name"])).json()
    assert official(entry)["status"] == "active" and "statusMessage" not in official(entry)
    assert_valid(entry)


async def test_deprecation_and_its_undoing_are_audited(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin, server = user_token(admin=True), await approved(api, user_token, f"{namespace()}/x")
    await lifecycle(api, admin, server["registration_id"], {"status": "deprecated", "message": "Use y"})
    await lifecycle(api, admin, server["registration_id"], {"status": "active"})

    trail = (await audit_entries(api, admin, registration_id=server["registration_id"]))["results"]

    assert [entry["action"] for entry in trail] == ["Undeprecated", "Deprecated", "Approved", "Created"]
    assert trail[1]["metadata"]["message"] == {"before": None, "after": "Use y"}
    assert trail[0]["metadata"]["lifecycle"] == {"before": "deprecated", "after": "active"}


async def test_a_request_that_changes_nothing_writes_no_audit_entry(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin, server = user_token(admin=True), await approved(api, user_token, f"{namespace()}/x")

    response = await lifecycle(api, admin, server["registration_id"], {"status": "active"})

    assert response.status_code == 200
    trail = (await audit_entries(api, admin, registration_id=server["registration_id"]))["results"]
    assert [entry["action"] for entry in trail] == ["Approved", "Created"]


async def test_only_an_approved_registration_can_be_deprecated(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    pending = await create_registration(api, user_token())

    response = await lifecycle(api, user_token(admin=True), pending["registration_id"], {"status": "deprecated", "message": "x"})

    assert_error(response, 409, "INVALID_STATE_TRANSITION")


@pytest.mark.parametrize(
    "body",
    [{"status": "deprecated"}, {"status": "deprecated", "message": "m" * 501}, {"status": "active", "message": "x"}, {"status": "deleted"}],
)
async def test_a_malformed_lifecycle_change_is_422(api: httpx.AsyncClient, user_token: TokenFactory, body: dict[str, Any]) -> None:
    server = await approved(api, user_token, f"{namespace()}/x")

    assert_error(await lifecycle(api, user_token(admin=True), server["registration_id"], body), 422, "VALIDATION_ERROR")


async def test_only_admins_change_the_lifecycle_and_an_unknown_id_is_404(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    server = await approved(api, user_token, f"{namespace()}/x")
    body = {"status": "deprecated", "message": "x"}

    assert_error(await lifecycle(api, user_token(), server["registration_id"], body), 403, "FORBIDDEN")
    assert_error(await lifecycle(api, user_token(admin=True), str(uuid.uuid4()), body), 404, "NOT_FOUND")


async def test_the_allowlist_leaves_deprecated_servers_out_when_asked(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    admin = user_token(admin=True)
    kept, deprecated = await approved(api, user_token, f"{namespace()}/k"), await approved(api, user_token, f"{namespace()}/d")
    await lifecycle(api, admin, deprecated["registration_id"], {"status": "deprecated", "message": "x"})

    every = await api.get("/api/v0.1/allowlist", headers=bearer(admin))
    current = await api.get("/api/v0.1/allowlist", params={"include_deprecated": "false"}, headers=bearer(admin))

    urls = [entry["serverUrl"] for entry in every.json()["allowedMcpServers"]]
    current_urls = [entry["serverUrl"] for entry in current.json()["allowedMcpServers"]]
    assert kept["endpoint_url"] in urls and deprecated["endpoint_url"] in urls
    assert kept["endpoint_url"] in current_urls and deprecated["endpoint_url"] not in current_urls


# ---------------------------------------------------------------- tombstones


async def delete(api: httpx.AsyncClient, admin: str, registration_id: str) -> None:
    assert (await api.delete(f"{REGISTRATIONS}/{registration_id}", headers=bearer(admin))).status_code == 204


async def test_a_deleted_server_is_listed_as_deleted_only_with_include_deleted(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns = namespace()
    server = await approved(api, user_token, f"{ns}/gone")
    await delete(api, user_token(admin=True), server["registration_id"])

    plain = await listed(api, ns)
    with_deleted = await listed(api, ns, include_deleted="true")

    assert server["server_name"] not in plain
    entry = with_deleted[server["server_name"]]
    assert_valid(entry)
    assert official(entry)["status"] == "deleted"
    assert official(entry)["statusChangedAt"] and official(entry)["updatedAt"] >= official(entry)["statusChangedAt"][:19]
    assert entry["server"]["remotes"][0]["url"] == server["endpoint_url"]


async def test_a_sync_with_updated_since_sees_the_deleted_server_without_asking(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns = namespace()
    server = await approved(api, user_token, f"{ns}/gone")
    await delete(api, user_token(admin=True), server["registration_id"])

    synced = await listed(api, ns, updated_since="2000-01-01T00:00:00Z")

    assert official(synced[server["server_name"]])["status"] == "deleted"


async def test_a_deleted_name_is_404_unless_include_deleted(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    server = await approved(api, user_token, f"{namespace()}/gone")
    await delete(api, user_token(admin=True), server["registration_id"])

    missing = await latest(api, server["server_name"])
    found = await latest(api, server["server_name"], include_deleted="true")

    assert missing.status_code == 404
    assert found.status_code == 200 and official(found.json())["status"] == "deleted"
    assert_valid(found.json())


async def test_approving_a_registration_of_a_deleted_name_serves_it_again_as_active(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    name = f"{namespace()}/again"
    first = await approved(api, user_token, name)
    await delete(api, user_token(admin=True), first["registration_id"])

    second = await approved(api, user_token, name)

    entries = await listed(api, name.split("/")[0], include_deleted="true")
    assert official(entries[name])["status"] == "active"
    assert entries[name]["server"]["remotes"][0]["url"] == second["endpoint_url"]


# ---------------------------------------------------------------- incremental sync


async def sync(api: httpx.AsyncClient, search: str, since: str, between_pages: Any = None) -> list[dict[str, Any]]:
    """Page through `updated_since=since` like a registry mirror (limit 2), running `between_pages` after each page."""
    seen: list[dict[str, Any]] = []
    url = f"{SERVERS}?limit=2&search={search}&updated_since={quote(since, safe='')}"
    while True:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["servers"]
        cursor = body["metadata"].get("nextCursor")
        if between_pages is not None:
            await between_pages()
        if not cursor:
            return seen
        url = f"{SERVERS}?limit=2&cursor={cursor}"


def newest(entries: list[dict[str, Any]], floor: str) -> str:
    return max([official(entry)["updatedAt"] for entry in entries] + [floor])


def state_of(entries: list[dict[str, Any]]) -> dict[str, tuple[str, str, str]]:
    """name → (status, version, updatedAt), later entries overriding earlier ones."""
    state: dict[str, tuple[str, str, str]] = {}
    for entry in entries:
        state[entry["server"]["name"]] = (official(entry)["status"], entry["server"]["version"], official(entry)["updatedAt"])
    return state


async def test_a_second_sync_from_the_newest_updated_at_sees_every_change_made_during_the_first_exactly_once(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns = namespace()
    admin = user_token(admin=True)
    servers = [await approved(api, user_token, f"{ns}/s{i:02d}") for i in range(8)]
    pending = [await create_registration(api, user_token(), server_name=f"{ns}/p{i:02d}") for i in range(3)]
    writes = iter(
        [
            lambda: decide(api, admin, pending[0]["registration_id"], "Approved"),
            lambda: api.patch(f"{REGISTRATIONS}/{servers[0]['registration_id']}", json={"version": "2.0.0"}, headers=bearer(admin)),
            lambda: lifecycle(api, admin, servers[7]["registration_id"], {"status": "deprecated", "message": "Use s00"}),
            lambda: api.delete(f"{REGISTRATIONS}/{servers[6]['registration_id']}", headers=bearer(admin)),
            lambda: decide(api, admin, pending[1]["registration_id"], "Approved"),
            lambda: api.patch(f"{REGISTRATIONS}/{servers[5]['registration_id']}", json={"version": "5.1.0"}, headers=bearer(admin)),
        ]
    )

    async def write_between_pages() -> None:
        write = next(writes, None)
        if write is not None:
            assert (await write()).status_code in {200, 204}

    first = await sync(api, ns, "2000-01-01T00:00:00Z", write_between_pages)
    for write in writes:  # whatever the pages did not reach
        assert (await write()).status_code in {200, 204}
    second = await sync(api, ns, newest(first, "2000-01-01T00:00:00Z"))

    truth = state_of((await api.get(SERVERS, params={"search": ns, "limit": "100", "include_deleted": "true"})).json()["servers"])
    assert state_of(first + second) == truth
    assert truth[f"{ns}/s00"][1] == "2.0.0" and truth[f"{ns}/s05"][1] == "5.1.0"
    assert truth[f"{ns}/s06"][0] == "deleted" and truth[f"{ns}/s07"][0] == "deprecated"
    assert f"{ns}/p00" in truth and f"{ns}/p01" in truth and f"{ns}/p02" not in truth
    # Exactly once: the second sync repeats nothing the first one already delivered.
    delivered = {(entry["server"]["name"], official(entry)["updatedAt"]) for entry in first}
    assert not [entry for entry in second if (entry["server"]["name"], official(entry)["updatedAt"]) in delivered]
    assert len(second) == len({entry["server"]["name"] for entry in second})


async def test_a_change_committed_late_with_an_older_write_time_is_not_missed(
    api: httpx.AsyncClient, user_token: TokenFactory, database_url: str
) -> None:
    # The race timestamps alone lose: a slow transaction writes first (older updated_at) and commits after a
    # faster one that a client has already seen. The slow writer runs without triggers (as a bulk load can): it
    # then holds no counter row the fast one could wait on (they are striped by backend, sql/0009, and two
    # backends may share a stripe), so the test does not depend on which stripes the two sessions get.
    ns = namespace()
    slow_target, fast_target = await approved(api, user_token, f"{ns}/slow"), await approved(api, user_token, f"{ns}/fast")
    baseline = newest(await sync(api, ns, "2000-01-01T00:00:00Z"), "2000-01-01T00:00:00Z")
    slow = await asyncpg.connect(database_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute("SET LOCAL session_replication_role = replica")
        await slow.execute(
            "UPDATE registrations SET version = '9.9.9', updated_at = clock_timestamp() WHERE registration_id = $1",
            uuid.UUID(slow_target["registration_id"]),
        )
        edit = await api.patch(
            f"{REGISTRATIONS}/{fast_target['registration_id']}", json={"version": "3.0.0"}, headers=bearer(user_token(admin=True))
        )
        assert edit.status_code == 200
        during = await sync(api, ns, baseline)
        await transaction.commit()
    finally:
        await slow.close()
    after = await sync(api, ns, newest(during, baseline))

    # While the slow one was open, the fast change was held back too (it is newer than the slow one's start)...
    assert during == []
    # ...so the next sync, from the newest updatedAt the client had, sees both.
    assert {entry["server"]["name"]: entry["server"]["version"] for entry in after} == {
        f"{ns}/slow": "9.9.9",
        f"{ns}/fast": "3.0.0",
    }


# ---------------------------------------------------------------- conditional GET


async def test_a_list_answers_its_current_etag_with_304_without_a_body_and_with_cors(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns = namespace()
    await approved(api, user_token, f"{ns}/x")
    first = await api.get(SERVERS, params={"search": ns})

    again = await api.get(SERVERS, params={"search": ns}, headers={"If-None-Match": first.headers["ETag"]})

    assert first.status_code == 200 and first.headers["ETag"].startswith('W/"')
    assert again.status_code == 304 and again.content == b""
    assert again.headers["access-control-allow-origin"] == "*"
    assert again.headers["cache-control"] == first.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    assert again.headers["ETag"] == first.headers["ETag"]


async def test_after_an_approval_or_a_change_the_list_is_200_with_a_new_etag(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    ns, admin = namespace(), user_token(admin=True)
    server = await approved(api, user_token, f"{ns}/x")
    etags = [(await api.get(SERVERS, params={"search": ns})).headers["ETag"]]
    pending = await create_registration(api, user_token(), server_name=f"{ns}/y")
    changes = [
        lambda: decide(api, admin, pending["registration_id"], "Approved"),
        lambda: api.patch(f"{REGISTRATIONS}/{server['registration_id']}", json={"description": "Changed"}, headers=bearer(admin)),
        lambda: lifecycle(api, admin, server["registration_id"], {"status": "deprecated", "message": "Use y"}),
        lambda: api.delete(f"{REGISTRATIONS}/{server['registration_id']}", headers=bearer(admin)),
    ]

    for change in changes:
        assert (await change()).status_code in {200, 204}
        response = await api.get(SERVERS, params={"search": ns}, headers={"If-None-Match": etags[-1]})
        assert response.status_code == 200 and response.json()["servers"] is not None
        assert response.headers["ETag"] not in etags
        etags.append(response.headers["ETag"])


async def test_a_server_version_has_a_strong_etag_answered_with_304_until_it_changes(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    server = await approved(api, user_token, f"{namespace()}/x")
    first = await latest(api, server["server_name"])

    same = await api.get(
        f"{SERVERS}/{quote(server['server_name'], safe='')}/versions/latest", headers={"If-None-Match": first.headers["ETag"]}
    )
    await api.patch(f"{REGISTRATIONS}/{server['registration_id']}", json={"version": "1.0.1"}, headers=bearer(user_token(admin=True)))
    changed = await api.get(
        f"{SERVERS}/{quote(server['server_name'], safe='')}/versions/latest", headers={"If-None-Match": first.headers["ETag"]}
    )

    assert first.headers["ETag"].startswith('"')
    assert same.status_code == 304 and same.content == b"" and same.headers["access-control-allow-origin"] == "*"
    assert changed.status_code == 200 and changed.json()["server"]["version"] == "1.0.1"
    assert changed.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize("if_none_match", ['"not-this-one"', 'W/"not-this-one"', "garbage", '""', "W/"])
async def test_an_if_none_match_that_is_not_the_current_etag_is_200(
    api: httpx.AsyncClient, user_token: TokenFactory, if_none_match: str
) -> None:
    server = await approved(api, user_token, f"{namespace()}/x")

    for path in (f"{SERVERS}?search={server['server_name']}", f"{SERVERS}/{quote(server['server_name'], safe='')}/versions/latest"):
        response = await api.get(path, headers={"If-None-Match": if_none_match})
        assert response.status_code == 200 and response.headers["ETag"]


async def test_the_list_etag_of_one_query_does_not_answer_another(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    ns = namespace()
    await approved(api, user_token, f"{ns}/x")
    etag = (await api.get(SERVERS, params={"search": ns})).headers["ETag"]

    other = await api.get(SERVERS, params={"search": ns, "limit": "1"}, headers={"If-None-Match": etag})

    assert other.status_code == 200


async def test_concurrent_polls_all_get_the_same_etag(api: httpx.AsyncClient, user_token: TokenFactory) -> None:
    ns = namespace()
    await approved(api, user_token, f"{ns}/x")

    responses = await asyncio.gather(*(api.get(SERVERS, params={"search": ns}) for _ in range(10)))

    assert len({response.headers["ETag"] for response in responses}) == 1
