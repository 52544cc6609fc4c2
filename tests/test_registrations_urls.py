"""Endpoint URLs over HTTP: every spelling of one endpoint is one registration, found by any spelling."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from tests.support.issuer import bearer
from tests.support.registrations import REGISTRATIONS, assert_error, create_registration, registration_body

TokenFactory = Callable[..., str]
BY_URL = f"{REGISTRATIONS}/by-url"


def spellings_of(host: str) -> list[str]:
    """Spellings of https://<host>/mcp that the WHATWG standard (plus escape normalisation) makes one URL."""
    upper = host.upper()
    return [
        f"https://{host}/mcp",
        f"https://{upper}/mcp",
        f"https://{host}:443/mcp",
        f"HTTPS://{host}/mcp",
        f"https://{host}/%6Dcp",
        f"https://{host}/%6dcp",
        f"https://{host}/a/../mcp",
        f"https://{host}/./mcp",
        f"  https://{host}/mcp ",
    ]


def unique_host() -> str:
    return f"dup-{uuid.uuid4().hex[:12]}.example.com"


async def by_url(api: httpx.AsyncClient, token: str, url: str) -> httpx.Response:
    # encodeURIComponent(url), as the frontend and CI pipelines build it.
    return await api.get(f"{BY_URL}?endpoint_url={quote(url, safe='')}", headers=bearer(token))


async def test_every_spelling_after_the_first_is_409_naming_the_first(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    first, *others = spellings_of(unique_host())
    created = await create_registration(api, token, endpoint_url=first)

    for spelling in others:
        response = await api.post(REGISTRATIONS, json=registration_body(endpoint_url=spelling), headers=bearer(token))
        body = assert_error(response, 409, "DUPLICATE_ENDPOINT")
        assert body["registration_id"] == created["registration_id"], spelling


async def test_an_idn_host_and_its_punycode_are_one_endpoint_stored_as_punycode(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    label = f"bücher-{uuid.uuid4().hex[:8]}"
    punycode = label.encode("idna").decode("ascii")
    created = await create_registration(api, token, endpoint_url=f"https://{label}.example/mcp")

    again = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_url=f"https://{punycode}.example/mcp"), headers=bearer(token)
    )

    assert punycode.startswith("xn--bcher-")
    assert created["endpoint_url"] == f"https://{punycode}.example/mcp"
    assert assert_error(again, 409, "DUPLICATE_ENDPOINT")["registration_id"] == created["registration_id"]


@pytest.mark.parametrize(
    ("template", "other_spelling"),
    [
        ("http://{host}/mcp", "HTTP://{host}:80/mcp"),
        ("https://{host}/~team/mcp", "https://{host}/%7Eteam/mcp"),
        ("https://{host}/~team/mcp", "https://{host}/%7eteam/mcp"),
        ("https://{host}/a%2Fb", "https://{host}/a%2fb"),
        ("https://{host}/mcp?q=a%20b", "https://{host}/mcp?q=a b"),
    ],
)
async def test_more_spellings_of_one_url_are_409(
    api: httpx.AsyncClient, user_token: TokenFactory, template: str, other_spelling: str
) -> None:
    token = user_token()
    host = unique_host()
    created = await create_registration(api, token, endpoint_url=template.format(host=host))

    response = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_url=other_spelling.format(host=host)), headers=bearer(token)
    )

    assert assert_error(response, 409, "DUPLICATE_ENDPOINT")["registration_id"] == created["registration_id"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("https://{host}/mcp", "https://{host}/mcp/"), ("https://{host}/mcp", "https://{host}/mcp?v=2")],
)
async def test_a_trailing_slash_or_a_query_makes_another_endpoint(
    api: httpx.AsyncClient, user_token: TokenFactory, first: str, second: str
) -> None:
    token = user_token()
    host = unique_host()
    await create_registration(api, token, endpoint_url=first.format(host=host))

    response = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_url=second.format(host=host)), headers=bearer(token)
    )

    assert response.status_code == 201, response.text


async def test_by_url_finds_the_registration_with_every_spelling(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    first, *others = spellings_of(unique_host())
    created = await create_registration(api, token, endpoint_url=others[0])

    for spelling in [first, *others]:
        response = await by_url(api, token, spelling)
        assert response.status_code == 200, (spelling, response.text)
        assert response.json()["registration_id"] == created["registration_id"]


@pytest.mark.parametrize(
    "argument", ["not a url", "ftp://files.example.com/mcp", "https://user:pw@x.example.com/mcp", "https://"]
)
async def test_by_url_with_an_argument_that_is_not_an_acceptable_url_is_400(
    api: httpx.AsyncClient, user_token: TokenFactory, argument: str
) -> None:
    response = await by_url(api, user_token(), argument)

    body = assert_error(response, 400, "INVALID_QUERY")
    assert "endpoint_url" in body["field_errors"]


async def test_by_url_of_a_valid_unregistered_url_is_still_404(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    response = await by_url(api, user_token(), f"https://{unique_host()}/mcp")

    assert assert_error(response, 404, "NOT_FOUND")["detail"] == "No registration found for this endpoint URL"


async def test_editing_a_registration_to_a_spelling_of_a_taken_url_is_409_naming_the_holder(
    api: httpx.AsyncClient, user_token: TokenFactory, db: asyncpg.Connection
) -> None:
    token = user_token()
    first, *others = spellings_of(unique_host())
    holder = await create_registration(api, token, endpoint_url=first)
    other = await create_registration(api, token)

    for spelling in others:
        response = await api.patch(
            f"{REGISTRATIONS}/{other['registration_id']}", json={"endpoint_url": spelling}, headers=bearer(token)
        )
        assert assert_error(response, 409, "DUPLICATE_ENDPOINT")["registration_id"] == holder["registration_id"]
    stored = await db.fetchval(
        "SELECT endpoint_url FROM registrations WHERE registration_id = $1", uuid.UUID(other["registration_id"])
    )
    assert stored == other["endpoint_url"]


async def test_editing_a_registration_to_another_spelling_of_its_own_url_changes_nothing(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    first, *others = spellings_of(unique_host())
    created = await create_registration(api, token, endpoint_url=first)

    response = await api.patch(
        f"{REGISTRATIONS}/{created['registration_id']}", json={"endpoint_url": others[0]}, headers=bearer(token)
    )

    assert response.status_code == 200, response.text
    assert response.json()["endpoint_url"] == first
    assert response.headers["ETag"] == '"1"'


async def test_concurrent_submissions_of_two_spellings_of_one_url_give_exactly_one_201(
    api: httpx.AsyncClient, user_token: TokenFactory
) -> None:
    token = user_token()
    spellings = spellings_of(unique_host())

    responses = await asyncio.gather(
        *(
            api.post(REGISTRATIONS, json=registration_body(endpoint_url=spelling), headers=bearer(token))
            for spelling in spellings * 2
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (len(spellings) * 2 - 1)


@pytest.mark.parametrize(
    ("submitted", "stored"),
    [
        ("http://127.0.0.1:9/{tag}", "http://127.0.0.1:9/{tag}"),
        ("http://[::1]:9/{tag}", "http://[::1]:9/{tag}"),
        ("https://mcp.example.com/mcp?team=data science&tag={tag}", "https://mcp.example.com/mcp?team=data%20science&tag={tag}"),
        ("https://mcp.example.com/mcp?région=é&tag={tag}", "https://mcp.example.com/mcp?r%C3%A9gion=%C3%A9&tag={tag}"),
        ("https://ÉVÈNEMENT.example/{tag}", "https://xn--vnement-2xah.example/{tag}"),
        # The parser-differential trick: the host is the one a browser would connect to.
        ("https://evil-{tag}.example.net\\@mcp.example.com/", "https://evil-{tag}.example.net/@mcp.example.com/"),
    ],
)
async def test_a_url_a_browser_accepts_is_registered_in_its_canonical_form(
    api: httpx.AsyncClient, user_token: TokenFactory, submitted: str, stored: str
) -> None:
    tag = uuid.uuid4().hex[:8]

    response = await api.post(
        REGISTRATIONS, json=registration_body(endpoint_url=submitted.format(tag=tag)), headers=bearer(user_token())
    )

    assert response.status_code == 201, response.text
    assert response.json()["endpoint_url"] == stored.format(tag=tag)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:secret@mcp.example.com/mcp", "user info"),
        ("https://mcp.example.com@evil.example.net/mcp", "user info"),
        ("https://mcp.example.com/mcp#tools", "fragment"),
        ("ftp://mcp.example.com/mcp", "http or https"),
        ("https://", "host"),
        ("https://:8443/mcp", "host"),
        ("http://::1/mcp", "not a valid URL"),
    ],
)
async def test_an_unacceptable_url_is_422_saying_why_in_field_errors(
    api: httpx.AsyncClient, user_token: TokenFactory, url: str, reason: str
) -> None:
    response = await api.post(REGISTRATIONS, json=registration_body(endpoint_url=url), headers=bearer(user_token()))

    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert reason in body["field_errors"]["endpoint_url"]
