"""Database failures as the contract's errors: SQLSTATEs and driver errors → 503, 422, or None for our bugs."""

from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions import InternalClientError

from shared.errors import ApiError, DatabaseUnavailable, ValidationFailed

_UNAVAILABLE_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "28",  # invalid authorization (the app cannot log in: credentials or token configuration)
    "53",  # insufficient resources (too many connections, out of memory, disk full)
    "57",  # operator intervention (shutdown, cannot connect now, statement timeout / query canceled)
    "58",  # system error
)
_UNAVAILABLE_SQLSTATES = {
    "25006",  # read_only_sql_transaction: a failover in progress (writes go to a standby)
    "3D000",  # invalid_catalog_name: the database does not exist (yet)
    "40001",  # serialization_failure: transient, the client may retry
    "40P01",  # deadlock_detected: transient, the client may retry
    "55P03",  # lock_not_available
    "55006",  # object_in_use
}
# Values the client sent that PostgreSQL refuses (validation should catch them first): 422, not 500.
_CLIENT_VALUE_SQLSTATES = {
    "22001",  # string_data_right_truncation
    "22003",  # numeric_value_out_of_range
    "22007",  # invalid_datetime_format
    "22008",  # datetime_field_overflow
    "22025",  # invalid_escape_sequence (LIKE patterns)
    "2201B",  # invalid_regular_expression
    "22P02",  # invalid_text_representation
    "23502",  # not_null_violation
    "23514",  # check_violation
    "54000",  # program_limit_exceeded (e.g. a value too large for an index)
}
# Text PostgreSQL cannot store: a NUL character (22021 character_not_in_repertoire, 22P05 untranslatable).
_UNSTORABLE_TEXT_SQLSTATES = {"22021", "22P05"}
# Connection-level failures: the connection is gone or the server is going away.
_CONNECTION_SQLSTATES = {"57P01", "57P02", "57P03"}


def is_connection_failure(exc: BaseException) -> bool:
    """True when `exc` means the connection (or the server behind it) is gone, not that a query failed."""
    if isinstance(exc, ApiError) and exc.__cause__ is not None:
        exc = exc.__cause__
    # InternalClientError: asyncpg's protocol state broke, e.g. the server's FATAL arrived mid-query.
    if isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, InternalClientError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and (sqlstate.startswith("08") or sqlstate in _CONNECTION_SQLSTATES)


def as_api_error(exc: BaseException) -> ApiError | None:
    """The contract's error for a database failure, or None when it is a bug (→ 500).

    Unavailable (503 + Retry-After): unreachable or refusing server, timeouts (acquire, command, statement
    timeout), shutdowns, failovers, transient conflicts. The client's values (422, NUL text included):
    data PostgreSQL refuses. Anything else (SQL errors, undefined objects) is ours: None, logged as a 500.
    """
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, InternalClientError)):
        return DatabaseUnavailable()
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or sqlstate in _UNAVAILABLE_SQLSTATES:
            return DatabaseUnavailable()
        if sqlstate in _UNSTORABLE_TEXT_SQLSTATES:
            # The models refuse NUL in every field and query parameter (naming it), so this is a last resort:
            # the value may have come from the body or the query, hence no field and no INVALID_JSON.
            return ValidationFailed("A text value contains a NUL character, which cannot be stored")
        if sqlstate in _CLIENT_VALUE_SQLSTATES:
            return ValidationFailed("A value is not accepted by the database (out of range, too long or malformed)")
    return None


def left_unanswered(exc: BaseException) -> bool:
    """True when the server did not answer the last command in time (or the caller stopped waiting)."""
    if isinstance(exc, ApiError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return isinstance(exc, (TimeoutError, asyncio.CancelledError)) or is_connection_failure(exc)
