"""Driver errors mapped once to the domain's errors.

A duplicate key is `DuplicateEntity`, a validator's refusal `DocumentInvalid`; everything that
means "the database cannot answer now" is `DatabaseUnavailable` (503): no connection, no server
selected in time, a primary stepping down or shutting down, an operation or a write concern
that timed out, a cursor lost with its server. For a write, such an answer leaves its outcome
unknown: the write may have been applied. A retry with the same Idempotency-Key finds it.

Any other driver error is a bug or a server condition nobody foresaw; it propagates, and the
API still answers it with 503 (`backend/api/errors.py`) after logging its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymongo.errors import (
    BulkWriteError,
    CursorNotFound,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    OperationFailure,
    ProtocolError,
    PyMongoError,
    WriteConcernError,
    WriteError,
)

from backend.db.connection import CONNECTION_ERRORS
from backend.errors import DatabaseUnavailable, DocumentInvalid, DuplicateEntity

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
DOCUMENT_VALIDATION_FAILURE = 121

#: Server answers that mean "not now" rather than "never".
UNAVAILABLE_CODES = frozenset({
    6,      # HostUnreachable
    7,      # HostNotFound
    43,     # CursorNotFound (its server restarted)
    50,     # MaxTimeMSExpired
    64,     # WriteConcernFailed (wtimeout)
    89,     # NetworkTimeout
    91,     # ShutdownInProgress
    189,    # PrimarySteppedDown
    262,    # ExceededTimeLimit
    9001,   # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
})
#: Driver errors of these kinds are always "not now": lost connections and timeouts, a lost
#: cursor, a reply the driver could not read.
UNAVAILABLE_KINDS: tuple[type[PyMongoError], ...] = (
    ExecutionTimeout, WriteConcernError, CursorNotFound, ProtocolError,
)
_TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError", "NetworkError")


def _duplicate_field(details: Mapping[str, Any] | None) -> str | None:
    if not details:
        return None
    pattern = details.get("keyPattern") or details.get("keyValue")
    if isinstance(pattern, Mapping) and pattern:
        return ",".join(str(key) for key in pattern)
    message = str(details.get("errmsg", ""))
    if "index:" in message:
        return message.split("index:", 1)[1].split()[0]
    return None


def _duplicate(collection: str, details: Mapping[str, Any] | None) -> DuplicateEntity:
    field = _duplicate_field(details)
    return DuplicateEntity(
        f"a {collection} record with this {field or 'key'} already exists",
        field=field,
        details={"collection": collection, "field": field},
    )


def _invalid(collection: str, details: Mapping[str, Any] | None) -> DocumentInvalid:
    info = (details or {}).get("errInfo")
    return DocumentInvalid(
        f"the {collection} document does not satisfy the collection's schema",
        details={"collection": collection, "validation": _plain(info)},
    )


def _plain(value: Any) -> Any:
    """Make validator error details JSON-friendly (they may hold BSON values)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def unavailable(error: PyMongoError, collection: str | None = None) -> DatabaseUnavailable:
    # The driver's text names hosts, ports and the topology: the log gets it, the caller only
    # the kind of failure.
    first_line = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    logger.warning("database unavailable%s: %s", f" on {collection}" if collection else "",
                   first_line)
    return DatabaseUnavailable("the database is unavailable",
                               details={"kind": type(error).__name__})


def is_unavailable(error: PyMongoError) -> bool:
    """The error means the database cannot answer now (see the module docstring)."""
    if isinstance(error, (*CONNECTION_ERRORS, *UNAVAILABLE_KINDS)):
        return True
    if isinstance(error, InvalidOperation):
        # A client closed under a request (the process is shutting down); any other invalid
        # operation is a bug, left to the API's last-resort mapping and its logged traceback.
        return "after close" in str(error)
    if any(error.has_error_label(label) for label in _TRANSIENT_LABELS):
        return True
    if isinstance(error, BulkWriteError):
        return bool((error.details or {}).get("writeConcernErrors"))
    return isinstance(error, OperationFailure) and error.code in UNAVAILABLE_CODES


def translate(error: PyMongoError, collection: str) -> Exception:
    """The domain error for a driver error, or the error itself when it is not a known kind."""
    if isinstance(error, DuplicateKeyError):
        return _duplicate(collection, error.details)
    if isinstance(error, BulkWriteError):
        write_errors = (error.details or {}).get("writeErrors", [])
        for item in write_errors:
            if item.get("code") == DUPLICATE_KEY:
                return _duplicate(collection, item)
        for item in write_errors:
            if item.get("code") == DOCUMENT_VALIDATION_FAILURE:
                return _invalid(collection, item)
    elif isinstance(error, WriteError | OperationFailure):
        if error.code == DUPLICATE_KEY:
            return _duplicate(collection, error.details)
        if error.code == DOCUMENT_VALIDATION_FAILURE:
            return _invalid(collection, error.details)
    if is_unavailable(error):
        return unavailable(error, collection)
    return error


@contextmanager
def driver_errors(collection: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as error:
        mapped = translate(error, collection)
        if mapped is error:
            raise
        raise mapped from error
