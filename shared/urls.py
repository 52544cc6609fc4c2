"""The canonical form of an endpoint URL: one spelling per endpoint, as browsers, Node.js and VS Code see it.

The URL is parsed by pydantic-core's URL type, which implements the WHATWG URL Standard (the Rust `url`
crate): scheme and host lower-cased, an IDN host in its ASCII (punycode) form, the default port dropped, dot
segments resolved, and spaces and non-ASCII characters percent-encoded. The standard leaves percent-escapes
as they were written, so two spellings of one resource would still differ (`/%6Dcp` and `/mcp`, `%7e` and
`%7E`); RFC 3986 §6.2.2.2 defines their equivalence, applied here on top: escapes of unreserved characters
are decoded and the remaining escapes get upper-case hex digits. A trailing `/` and the query stay
significant: they can name different resources.
"""

from __future__ import annotations

import re

from pydantic_core import Url

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = ("http", "https")
# Escapes in an input this long cannot leave a canonical URL within MAX_URL_LENGTH; refusing it before
# parsing bounds the parser's work for anonymous callers (by-url).
MAX_INPUT_LENGTH = 3 * MAX_URL_LENGTH
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# ASCII control characters inside a URL: WHATWG parsers silently drop tabs and newlines, so what would be
# stored is not what was typed; refused instead. (Leading and trailing whitespace is trimmed.)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidEndpointUrl(ValueError):
    """The text is not an acceptable endpoint URL; the message says why, for `field_errors`."""


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def canonical_endpoint_url(value: str) -> str:
    """The canonical form of `value`, or InvalidEndpointUrl saying what is wrong with it."""
    text = value.strip()
    if not text:
        raise InvalidEndpointUrl("must be an absolute http or https URL")
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidEndpointUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if _CONTROL.search(text):
        raise InvalidEndpointUrl("must not contain control characters")
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidEndpointUrl("must use http or https")
    url = _parse(text)
    if url.username or url.password or _has_empty_user_info(text):
        raise InvalidEndpointUrl("must not contain user info (user:password@); put credentials elsewhere")
    if url.fragment is not None:
        raise InvalidEndpointUrl("must not contain a fragment (#…): it is never sent to the server")
    if url.port == 0:
        raise InvalidEndpointUrl("has an invalid port")
    serialised = str(url)
    canonical = _ESCAPE.sub(_normalise_escape, serialised)
    if canonical != serialised:
        # Decoding an escape can make new dot segments ("/%2E%2E/" is already one to WHATWG, but "%2E" next to
        # text is not), so such a result is parsed once more; the second parse is a fixed point.
        canonical = str(_parse(canonical))
    if len(canonical.encode("utf-8")) > MAX_URL_LENGTH:
        raise InvalidEndpointUrl(f"must be at most {MAX_URL_LENGTH} characters once encoded")
    return canonical


def _parse(text: str) -> Url:
    try:
        url = Url(text)
    except ValueError:
        if not _authority(text).rsplit(":", 1)[0]:
            raise InvalidEndpointUrl("must include a host") from None
        raise InvalidEndpointUrl("is not a valid URL") from None
    if not url.host:
        raise InvalidEndpointUrl("must include a host")
    return url


def _authority(text: str) -> str:
    """The authority as a special-scheme WHATWG parser delimits it (`\\` counts as `/`)."""
    after_scheme = text.split(":", 1)[1].lstrip("/\\")
    return re.split(r"[/\\?#]", after_scheme, maxsplit=1)[0]


def _has_empty_user_info(text: str) -> bool:
    # WHATWG drops an empty user info (`https://@host/`, `https://:@host/`) silently; an "@" in the authority
    # is still a sign of confusion (or of a parser-differential trick), so it is refused like any user info.
    return "@" in _authority(text)
