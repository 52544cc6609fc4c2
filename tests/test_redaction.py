"""Log redaction (shared.redaction): linear work on hostile text, counted rather than timed, and the same
redactions as the regular expressions it replaced (kept here as the reference, on short text where their
quadratic cost does not matter)."""

from __future__ import annotations

import random
import re

import pytest

from shared.redaction import HINT_WORDS, REDACTED, Scan, may_hold_secret, redact

# Each of the five rules searches the text for its anchor once (5 steps per character) and, by the argument
# in shared/redaction.py, examines each character a bounded number of further times; the worst family below
# measures about 6.2. The bound says "linear": the quadratic patterns did ~n/2 steps per character
# (an 8 KB `x://a.a.a.…!` cost them about 16 million).
STEPS_PER_CHARACTER = 10
STEPS_CONSTANT = 64

# What attackers put in a request path or a header: anchors of every rule, the run characters after them,
# and the separators that make an attempt fail late.
HOSTILE_UNITS = (
    "a.", "a", ".", "-", "x://", "://", "://a", ":", "@", "/", "!", " ", "%20", "=", "\"", "'", "\\",
    "bearer", "Basic ", "bearer%20", "abcdefg", "x-ms-token-", "x-ms-client-principal-", "password",
    "pwd ", "access_token", "set-cookie", "eyJ", "eyJ-", "eyJa.", "eyJaaaa.aaaa", "é", "_",
)
SIZES = (8 * 1024, 16 * 1024, 64 * 1024)


def work(text: str) -> int:
    scan = Scan()
    redact(text, scan)
    return scan.steps


def repeated(unit: str, size: int, tail: str = "!") -> str:
    return unit * (size // len(unit)) + tail


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "prefix,unit",
    [
        ("x://", "a."),  # the repro: the scheme run restarted at every 'a'
        ("", "eyJ-"),  # every "eyJ" after '-' starts a token run reaching the end
        ("", "x-ms-token-"),  # every name's tail reaches the end
        ("", "x-ms-client-principal-"),
        ("", "bearer "),
        ("", "password "),
        ("", "://a"),
        ("", "eyJaaaa."),
    ],
)
def test_pathological_inputs_cost_linear_work(prefix: str, unit: str, size: int) -> None:
    text = prefix + repeated(unit, size)

    steps = work(text)

    # Every rule looked at the whole text (the count is real), and no more than a constant times over.
    assert len(text) <= steps <= STEPS_PER_CHARACTER * len(text) + STEPS_CONSTANT, steps / len(text)


def test_a_generated_family_of_hostile_texts_costs_linear_work() -> None:
    generator = random.Random(14)
    worst = 0.0
    for _ in range(300):
        units = generator.choices(HOSTILE_UNITS, k=generator.randint(1, 4))
        text = "".join(generator.choice(units) for _ in range(generator.randint(500, 6000)))
        steps = work(text)
        assert steps <= STEPS_PER_CHARACTER * len(text) + STEPS_CONSTANT, (steps / len(text), text[:80])
        worst = max(worst, steps / len(text))
    assert worst > 5  # the family reached the rules (each searched the whole text at least)


def test_work_doubles_when_the_hostile_text_doubles() -> None:
    # The quadratic patterns quadrupled; a linear scan doubles (plus a little for the end of the text).
    for unit in ("a.", "eyJ-", "x-ms-token-"):
        small, large = work("x://" + repeated(unit, 16 * 1024)), work("x://" + repeated(unit, 32 * 1024))
        assert large <= 2.1 * small, (unit, small, large)


# ---------------------------------------------------------------- the same redactions as before

FORMER_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9\-._~+/=]{8,}"), rf"\1\2{REDACTED}"),
    (
        re.compile(
            r"(?i)(\b(?:authorization|proxy-authorization|cookie|set-cookie|x-ms-client-principal(?:-[a-z]+)?"
            r"|x-ms-token-[a-z0-9-]+|x-zumo-auth|access_token|id_token|refresh_token|client_secret"
            r"|password|passwd|pwd)\\?['\"]?\s*[:=]\s*)(\\?['\"]?)([^'\"\\\s,;&}]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9+/_-]{16,}={0,2}"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s'\"]*:)[^@/?#\s'\"]+@"), rf"\1{REDACTED}@"),
)

PIECES = (
    *HOSTILE_UNITS, "Bearer", "basic", "  ", "\t", "abcdefgh", "abc", "-id", "passwd", "PWD", "cookie",
    "authorization", "id_token", "client_secret", "x-zumo-auth", "eyJhbGciOi", "abcd", "postgresql", "+",
    "K", "1", ",", ";", "&", "}", "?", "#",
)


def former_redaction(text: str) -> str:
    for pattern, replacement in FORMER_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def test_redacts_what_the_former_patterns_redacted() -> None:
    generator = random.Random(1413)
    redacted_before = 0
    for _ in range(40_000):
        text = "".join(generator.choice(PIECES) for _ in range(generator.randint(1, 14)))
        before, now = former_redaction(text), redact(text)
        redacted_before += before != text
        if now != before:
            # The one widening: a URL password is redacted whatever precedes "://". What the former patterns
            # redacted stays redacted the same way; the difference is only more redaction.
            assert "://" in text and now.count(REDACTED) > before.count(REDACTED), (text, before, now)
            assert redact(before) == now, (text, before, now)
    assert redacted_before > 4_000  # the comparison covered thousands of texts with something to redact


@pytest.mark.parametrize(
    "text",
    [
        "dsn 1postgresql://app:Sup3r-Secret@db",  # the scheme must start with a letter for the former pattern
        "x_postgresql://app:Sup3r-Secret@db",  # no word boundary before the scheme
    ],
)
def test_a_url_password_is_redacted_whatever_precedes_the_scheme(text: str) -> None:
    assert "Sup3r-Secret" not in redact(text)


def test_the_pre_check_finds_every_hint_a_case_insensitive_search_finds() -> None:
    hints = re.compile("|".join(re.escape(hint) for hint in HINT_WORDS), re.IGNORECASE)
    # Mixed case, and the non-ASCII characters IGNORECASE equates with ASCII letters ('ſ' and 's', Kelvin 'K' and
    # 'k', 'ı'/'İ' and 'i'): those texts take the case-insensitive search, ASCII ones the lower-cased one.
    pieces = (*HINT_WORDS, "BeArEr", "PASSW", "Eyj", "X-MS-", "paſſw", "coo\u212aie", "baſıc", "authorİzation", "é",
              "a", "/", ":", "-", "_", "x", "://")
    generator = random.Random(16)
    found = 0
    for _ in range(20_000):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 6)))
        expected = hints.search(text) is not None
        assert may_hold_secret(text) is expected, text
        found += expected
    assert found > 5_000
    assert "Sup3r" not in redact("paſſword=Sup3r-Secret")  # a rule matches it, so the check must let it through
