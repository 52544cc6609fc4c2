"""The canonical form of an endpoint URL (shared/urls.py): every spelling of one endpoint becomes one string."""

from __future__ import annotations

import pytest

from shared.urls import InvalidEndpointUrl, canonical_endpoint_url

ONE_ENDPOINT = [
    "https://dup.example.com/mcp",
    "https://DUP.example.com/mcp",
    "https://dup.example.com:443/mcp",
    "HTTPS://dup.example.com/mcp",
    "https://dup.example.com/%6Dcp",
    "https://dup.example.com/%6dcp",
    "https://dup.example.com/a/../mcp",
    "https://dup.example.com/./mcp",
    "  https://dup.example.com/mcp  ",
]


@pytest.mark.parametrize("spelling", ONE_ENDPOINT)
def test_every_spelling_of_one_endpoint_has_the_same_canonical_form(spelling: str) -> None:
    assert canonical_endpoint_url(spelling) == "https://dup.example.com/mcp"


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("https://bücher.example/mcp", "https://xn--bcher-kva.example/mcp"),
        ("https://xn--bcher-kva.example/mcp", "https://xn--bcher-kva.example/mcp"),
        ("HTTP://x.example.com:80/a", "http://x.example.com/a"),
        ("https://x.example.com/%7E", "https://x.example.com/~"),
        ("https://x.example.com/%7e", "https://x.example.com/~"),
        ("https://x.example.com/~", "https://x.example.com/~"),
        ("https://x.example.com/%2f%3a", "https://x.example.com/%2F%3A"),
        ("https://x.example.com/?a=%7e&b=%41", "https://x.example.com/?a=~&b=A"),
        ("https://x.example.com", "https://x.example.com/"),
        ("http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp"),
        ("http://[::1]:8080/mcp", "http://[::1]:8080/mcp"),
        ("https://0x7f.1/mcp", "https://127.0.0.1/mcp"),
    ],
)
def test_the_canonical_form_is_what_the_whatwg_standard_serialises_with_escapes_normalised(
    spelling: str, canonical: str
) -> None:
    assert canonical_endpoint_url(spelling) == canonical


def test_spaces_and_non_ascii_characters_in_the_query_are_percent_encoded() -> None:
    url = "https://mcp.example.com/mcp?team=data science&région=é"
    assert canonical_endpoint_url(url) == "https://mcp.example.com/mcp?team=data%20science&r%C3%A9gion=%C3%A9"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://x.example.com/mcp", "https://x.example.com/mcp/"),
        ("https://x.example.com/mcp", "https://x.example.com/mcp?a=1"),
        ("https://x.example.com/mcp?a=1", "https://x.example.com/mcp?A=1"),
        ("https://x.example.com/Mcp", "https://x.example.com/mcp"),
        ("http://x.example.com/mcp", "https://x.example.com/mcp"),
        ("https://x.example.com:8443/mcp", "https://x.example.com/mcp"),
        ("https://x.example.com/a%2Fb", "https://x.example.com/a/b"),
    ],
)
def test_a_trailing_slash_the_query_the_path_case_and_reserved_escapes_stay_significant(first: str, second: str) -> None:
    assert canonical_endpoint_url(first) != canonical_endpoint_url(second)


@pytest.mark.parametrize(
    "url",
    [
        "https://dup.example.com/%6Dcp",
        "https://bücher.example/a b?c=é",
        "https://x.example.com/a%2E%2E/b",
        "https://x.example.com/%zz",
    ],
)
def test_the_canonical_form_is_its_own_canonical_form(url: str) -> None:
    canonical = canonical_endpoint_url(url)
    assert canonical_endpoint_url(canonical) == canonical


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:secret@mcp.example.com/mcp", "user info"),
        ("https://user@mcp.example.com/mcp", "user info"),
        ("https://@mcp.example.com/mcp", "user info"),
        ("https://mcp.example.com@evil.example.net/mcp", "user info"),
        ("https://mcp.example.com/mcp#tools", "fragment"),
        ("https://mcp.example.com/mcp#", "fragment"),
        ("ftp://mcp.example.com/mcp", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("mcp.example.com/mcp", "http or https"),
        ("https://", "host"),
        ("https://:443/mcp", "host"),
        ("http://::1/mcp", "not a valid URL"),
        ("https://exa mple.com/mcp", "not a valid URL"),
        ("http://mcp.example.com:0/mcp", "port"),
        ("https://mcp.example.com/a\tb", "control characters"),
        ("https://mcp.example.com/a\nb", "control characters"),
        ("", "absolute http or https URL"),
        ("https://mcp.example.com/" + "a" * 2048, "at most 2048"),
        ("https://mcp.example.com/" + "é" * 400, "at most 2048"),
    ],
)
def test_an_unacceptable_url_is_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(InvalidEndpointUrl, match=reason):
        canonical_endpoint_url(url)


def test_a_backslash_before_an_at_sign_is_read_as_a_browser_reads_it_the_host_is_before_it() -> None:
    # The parser-differential trick: urllib would see host mcp.example.com; browsers see evil.example.net.
    assert canonical_endpoint_url("https://evil.example.net\\@mcp.example.com/") == (
        "https://evil.example.net/@mcp.example.com/"
    )
