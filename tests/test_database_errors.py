"""Every driver error that means "the database cannot answer now" is DatabaseUnavailable, and
any driver error that reaches the API is answered 503, never 500 nor a dropped connection."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from backend.errors import DatabaseUnavailable, DuplicateEntity
from backend.repositories._errors import driver_errors, translate
from backend.settings import Settings
from tests.api_support import API, admin_headers, api_settings, assert_error, services

UNAVAILABLE = [
    ServerSelectionTimeoutError("No servers found yet"),
    AutoReconnect("connection closed"),
    NetworkTimeout("timed out"),
    NotPrimaryError("not primary", {"code": 10107}),
    WaitQueueTimeoutError("pool exhausted"),
    ExecutionTimeout("operation exceeded time limit", 50),
    WTimeoutError("waiting for replication timed out", 64),
    WriteConcernError("write concern failed", 100),
    CursorNotFound("cursor id not found", 43),
    InvalidOperation("Cannot use AsyncMongoClient after close"),
    OperationFailure("interrupted at shutdown", 11600),
    OperationFailure("primary stepped down", 189),
    OperationFailure("shutdown in progress", 91),
    OperationFailure("maxTimeMS expired", 50),
    OperationFailure("retry me", 999, {"errorLabels": ["RetryableWriteError"]}),
    BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "wtimeout"}]}),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda e: f"{type(e).__name__}-{e}")
def test_not_now_errors_are_database_unavailable(error: Any) -> None:
    mapped = translate(error, "users")
    assert isinstance(mapped, DatabaseUnavailable)
    assert mapped.details == {"kind": type(error).__name__}


def test_duplicates_stay_duplicates_and_bugs_stay_driver_errors() -> None:
    duplicate = translate(DuplicateKeyError("dup", 11000, {"keyPattern": {"email": 1}}), "users")
    assert isinstance(duplicate, DuplicateEntity) and duplicate.field == "email"
    bad_query = OperationFailure("unknown operator: $bogus", 2)
    assert translate(bad_query, "users") is bad_query
    empty_bulk = InvalidOperation("No operations to execute")
    assert translate(empty_bulk, "users") is empty_bulk
    with pytest.raises(OperationFailure), driver_errors("users"):
        raise bad_query


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


@pytest.mark.parametrize("error", [OperationFailure("unknown operator: $bogus", 2),
                                   ExecutionTimeout("operation exceeded time limit", 50)],
                         ids=["unmapped", "mapped"])
async def test_a_driver_error_reaching_the_api_is_503_not_500(
    app: FastAPI, client: httpx.AsyncClient, error: Exception,
) -> None:
    """The test client raises any exception the app lets escape: a dropped connection."""
    headers = await admin_headers(client)

    async def fails(*args: object, **kwargs: object) -> object:
        with driver_errors("crm_prospects"):
            raise error

    services(app).crm.search = fails  # type: ignore[method-assign]
    response = await client.get(f"{API}/admin/crm/prospects", headers=headers)
    assert_error(response, 503, "DATABASE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["details"] == {"kind": type(error).__name__}
