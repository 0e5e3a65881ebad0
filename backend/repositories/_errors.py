"""Driver errors mapped once to the domain's errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

from backend.db.connection import CONNECTION_ERRORS
from backend.errors import DatabaseUnavailable, DocumentInvalid, DuplicateEntity

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
DOCUMENT_VALIDATION_FAILURE = 121


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
        return error
    if isinstance(error, WriteError | OperationFailure):
        if error.code == DUPLICATE_KEY:
            return _duplicate(collection, error.details)
        if error.code == DOCUMENT_VALIDATION_FAILURE:
            return _invalid(collection, error.details)
        return error
    if isinstance(error, CONNECTION_ERRORS):
        # The driver's text names hosts, ports and the topology: the log gets it, the caller
        # only the kind of failure.
        first_line = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        logger.warning("database unavailable on %s: %s", collection, first_line)
        return DatabaseUnavailable("the database is unavailable",
                                   details={"error": type(error).__name__})
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
