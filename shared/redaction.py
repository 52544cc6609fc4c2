"""Secrets out of log text, in time linear in the text.

The patterns this replaces were single regular expressions, and three of them were quadratic: Python's `re`
tries every start position, and a pattern beginning with a class run (`[a-z][a-z0-9+.-]*://`) rescans the
rest of the run from each of them. `x://a.a.a.…!` (8 KB) in a request path took 1.5 s per log line, on the
event loop, and every request of the worker waited (issue 14).

Here each rule is an anchor (fixed words, found by a regex of literal alternatives: constant work per
position) followed by runs of one character class taken whole (possessively), and a failed attempt resumes
the anchor search where a later attempt could still succeed (argued rule by rule below). So every character
is examined a bounded number of times per rule. `Scan` counts the characters examined (anchor searches and
runs) so a test can bound the work by counting, not timing.

What is redacted is what the former patterns redacted (tests/test_logging.py); the only widening is that a
password in a URL is redacted whatever precedes `://` (the scheme is not checked any more).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "[REDACTED]"


@dataclass
class Scan:
    """Characters examined while redacting: each anchor search position and each run character (+1 to stop)."""

    steps: int = 0

    def search(self, anchor: re.Pattern[str], text: str, pos: int) -> re.Match[str] | None:
        found = anchor.search(text, pos)
        self.steps += (found.end() if found else len(text)) - pos
        return found

    def run(self, chars: re.Pattern[str], text: str, pos: int) -> int:
        """The end of the run of `chars` (a possessive `[…]*+`) starting at `pos`."""
        found = chars.match(text, pos)
        end = found.end() if found else pos
        self.steps += end - pos + 1
        return end

    def literal(self, text: str, pos: int, options: str) -> int:
        """`pos + 1` when the character at `pos` is one of `options`, else `pos`."""
        self.steps += 1
        return pos + 1 if pos < len(text) and text[pos] in options else pos


def _runs(char_class: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(f"[{char_class}]*+", flags)


@dataclass(frozen=True)
class Found:
    """What an attempt matched: [start, end) becomes [REDACTED], and the anchor search resumes at `end`."""

    start: int
    end: int


# One attempt of a rule at an anchor: Found, or the position where the anchor search resumes.
Attempt = Callable[[str, re.Match[str], Scan], Found | int]


def _substitute(text: str, scan: Scan, anchor: re.Pattern[str], attempt: Attempt) -> str:
    parts: list[str] = []
    kept = pos = 0
    while (found := scan.search(anchor, text, pos)) is not None:
        outcome = attempt(text, found, scan)
        if isinstance(outcome, int):
            pos = outcome
            continue
        parts += [text[kept : outcome.start], REDACTED]
        kept = pos = outcome.end
    return "".join(parts) + text[kept:] if parts else text


# ---------------------------------------------------------------- Authorization values: "Bearer <token>", Basic

_SCHEME = re.compile(r"(?<!\w)(?:bearer|basic)", re.IGNORECASE)
_SPACES = _runs(r"\s")
_TOKEN = _runs(r"A-Za-z0-9\-._~+/=", re.IGNORECASE)
_TOKEN_MIN = 8


def _authorization_value(text: str, anchor: re.Match[str], scan: Scan) -> Found | int:
    # Was (?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9\-._~+/=]{8,}. A failed attempt examined its separator
    # (whitespace, where no anchor starts) and fewer than 9 token characters: resuming after the separator
    # skips no anchor, and failed attempts overlap by at most 9 characters.
    separator_end = scan.run(_SPACES, text, anchor.end())
    if separator_end == anchor.end():
        scan.steps += 3
        if not text.startswith("%20", separator_end):
            return anchor.end()
        separator_end += 3
    token_end = scan.run(_TOKEN, text, separator_end)
    return Found(separator_end, token_end) if token_end - separator_end >= _TOKEN_MIN else separator_end


# ---------------------------------------------------------------- credential fields: "name: value", name=value, JSON

_FIELD_NAME = re.compile(
    r"(?<!\w)(?:authorization|proxy-authorization|cookie|set-cookie|x-ms-client-principal|x-ms-token-"
    r"|x-zumo-auth|access_token|id_token|refresh_token|client_secret|password|passwd|pwd)",
    re.IGNORECASE,
)
_LETTERS = _runs("a-z", re.IGNORECASE)
_TOKEN_NAME_REST = _runs("a-z0-9-", re.IGNORECASE)
_FIELD_VALUE = _runs("^'\"\\\\\\s,;&}")


def _field_name_end(text: str, anchor: re.Match[str], scan: Scan) -> int | None:
    """Where the header/field name ends (the two names with a variable tail take it whole), or None."""
    name, end = anchor.group().lower(), anchor.end()
    if name == "x-ms-client-principal" and text.startswith("-", end):
        # (?:-[a-z]+)?: a '-' without letters is not part of the name, and then nothing can follow it.
        letters_end = scan.run(_LETTERS, text, end + 1)
        return letters_end if letters_end > end + 1 else end
    if name == "x-ms-token-":
        rest_end = scan.run(_TOKEN_NAME_REST, text, end)
        return rest_end if rest_end > end else None
    return end


_LONGEST_NAME = len("x-ms-client-principal")


def _credential_field(text: str, anchor: re.Match[str], scan: Scan) -> Found | int:
    # Was (?i)(\b(?:names)\\?['"]?\s*[:=]\s*)(\\?['"]?)([^'"\\\s,;&}]+). Every optional piece and run is
    # followed by something it cannot contain, so taking each whole loses no match. A failed attempt resumes
    # a name's length before the end of its name: an anchor starting earlier inside the name (a tail of
    # letters, digits and '-') ends at the same place and fails the same way, or ends before another name
    # character, where no separator can follow; only a name reaching past the end ("…-access_token") can
    # still match. Past the name the attempt examined whitespace and single characters, where no anchor starts.
    name_end = _field_name_end(text, anchor, scan)
    if name_end is None:
        return anchor.end()
    at = scan.literal(text, name_end, "\\")
    at = scan.literal(text, at, "'\"")
    at = scan.run(_SPACES, text, at)
    separator = scan.literal(text, at, ":=")
    if separator > at:
        at = scan.run(_SPACES, text, separator)
        at = scan.literal(text, at, "\\")
        value_start = scan.literal(text, at, "'\"")
        value_end = scan.run(_FIELD_VALUE, text, value_start)
        if value_end > value_start:
            return Found(value_start, value_end)
    return max(anchor.end(), name_end - _LONGEST_NAME)


# ---------------------------------------------------------------- JWTs and base64 JSON blobs

_JSON_START = re.compile(r"(?<!\w)eyJ")
_BASE64URL = _runs("A-Za-z0-9_-")
_BASE64 = _runs("A-Za-z0-9+/_-")


def _jwt(text: str, anchor: re.Match[str], scan: Scan) -> Found | int:
    # Was \beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*. '.' ends each run, so runs are taken
    # whole. A failed attempt resumes at the end of the last run it examined: an anchor inside those runs
    # reaches the same ends with shorter runs and fails there too.
    header_end = scan.run(_BASE64URL, text, anchor.end())
    if header_end - anchor.end() < 4 or scan.literal(text, header_end, ".") == header_end:
        return header_end
    payload_end = scan.run(_BASE64URL, text, header_end + 1)
    if payload_end - header_end - 1 < 4 or scan.literal(text, payload_end, ".") == payload_end:
        return payload_end
    return Found(anchor.start(), scan.run(_BASE64URL, text, payload_end + 1))


def _json_blob(text: str, anchor: re.Match[str], scan: Scan) -> Found | int:
    # Was \beyJ[A-Za-z0-9+/_-]{16,}={0,2} (EasyAuth's X-MS-CLIENT-PRINCIPAL). It fails only on a short run,
    # and every anchor inside that run has a shorter one.
    blob_end = scan.run(_BASE64, text, anchor.end())
    if blob_end - anchor.end() < 16:
        return blob_end
    return Found(anchor.start(), scan.literal(text, scan.literal(text, blob_end, "="), "="))


# ---------------------------------------------------------------- passwords in URLs: scheme://user:password@host

_AUTHORITY_START = re.compile("://")
_USER = _runs("^:/?#@\\s'\"")
_PASSWORD = _runs("^@/?#\\s'\"")


def _url_password(text: str, anchor: re.Match[str], scan: Scan) -> Found | int:
    # Was \b([a-z][a-z0-9+.-]*://[^:/?#@\s'"]*:)[^@/?#\s'"]+@, quadratic on `a.a.a.…` (every '.a' was a new
    # start for the scheme run). Anchored on "://" instead: both runs stop at '/', so an attempt never
    # examines past the '/' of the next "://", and attempts overlap by at most two characters.
    user_end = scan.run(_USER, text, anchor.end())
    if scan.literal(text, user_end, ":") == user_end:
        return anchor.end()
    password_end = scan.run(_PASSWORD, text, user_end + 1)
    if password_end == user_end + 1 or scan.literal(text, password_end, "@") == password_end:
        return anchor.end()
    return Found(user_end + 1, password_end)


# Applied in this order, each to the previous one's output.
_RULES: tuple[tuple[re.Pattern[str], Attempt], ...] = (
    (_SCHEME, _authorization_value),
    (_FIELD_NAME, _credential_field),
    (_JSON_START, _jwt),
    (_JSON_START, _json_blob),
    (_AUTHORITY_START, _url_password),
)

# Every rule needs one of these (lower-cased) words to match: text without any of them (nearly every log line
# and field) skips the rules. Profiled at 1M registrations, redaction was 14.5 % of the serving process's CPU
# on GET /registrations/{id} before this check (it runs on the access line and on each of its fields).
HINT_WORDS = ("bearer", "basic", "authorization", "cookie", "x-ms-", "x-zumo", "_token", "secret", "passw", "pwd", "eyj", "://")
# One alternation of literals, searched once in C (linear: no quantifiers): checking the twelve words one by one
# cost the access line ~25 µs a request.
_HINTS = re.compile("|".join(re.escape(hint) for hint in HINT_WORDS), re.IGNORECASE)
# The same search over ASCII text lower-cased first, case-sensitively. For ASCII text that is exactly what
# IGNORECASE does (Unicode's extra equivalents, 'ſ' for 's', 'K' for 'k', 'ı' for 'i', need a non-ASCII
# character), and it is 4–7× cheaper: sre tries every branch of a case-insensitive alternation at every position,
# ~0.13 µs a character (a 55-character route 7.0 → 1.1 µs, 174 characters 23.7 → 3.5 µs).
_ASCII_HINTS = re.compile("|".join(re.escape(hint) for hint in HINT_WORDS))


def may_hold_secret(text: str) -> bool:
    """Whether `text` holds one of the words every rule needs (case-insensitively)."""
    if text.isascii():
        return _ASCII_HINTS.search(text.lower()) is not None
    return _HINTS.search(text) is not None


def redact(text: str, scan: Scan | None = None) -> str:
    """The text with every credential-looking value replaced by [REDACTED]; `scan` counts the work."""
    if not may_hold_secret(text):
        return text
    counter = scan if scan is not None else Scan()
    for anchor, attempt in _RULES:
        text = _substitute(text, counter, anchor, attempt)
    return text
