"""schemathesis against the OpenAPI document, signed in as an admin and as a client, with every
check it has (no 5xx; every status, content type, header and body as the document declares;
valid data accepted; ...).

`make test` runs a few examples per operation to stay short on the embedded database;
`make fuzz` runs FIDUS_FUZZ_EXAMPLES (25) per operation and role. schemathesis runs the app (and
its lifespan) on an event loop of its own; the calls here are synchronous.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from pymongo import MongoClient
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.api.app import create_app
from tests.api_support import ADMIN_EMAIL, ADMIN_PASSWORD, API, api_settings

EXAMPLES_PER_OPERATION = int(os.environ.get("FIDUS_FUZZ_EXAMPLES", "4"))


def valid_data_passes_request_validation(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's `positive_data_acceptance`, made exact for this API: data the document
    calls valid may still break a business rule (a 422 with the rule's own code, such as
    FUND_MINIMUM_NOT_MET, or a 415 for a file whose bytes are not the type it claims), which no
    schema can express; it must never fail request validation (400, or 422 VALIDATION_ERROR),
    which would mean the document promises what the API refuses."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    refused_as_invalid = response.status_code == 400 or (
        response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR")
    if refused_as_invalid:
        raise AssertionError(f"schema-valid data refused by request validation: "
                             f"{response.status_code} {response.text[:500]}")
    return None
#: Run last, each signed-in role's session ends with it.
LAST = ("POST", f"{API}/auth/logout")


@pytest.fixture
def running_app(mongo_uri: str, db_name: str) -> Iterator[FastAPI]:
    app = create_app(api_settings(mongo_uri, db_name, login_ip_max_attempts_per_minute=1000),
                     configure_logs=False)
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()
        with MongoClient(mongo_uri) as mongo:
            mongo.drop_database(db_name)


def _sign_in(http: Any, login: str, password: str) -> dict[str, str]:
    response = http.post(f"{API}/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_every_operation_conforms_to_the_document(running_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", running_app)
    with asgi.get_client(running_app) as http:
        admin = _sign_in(http, ADMIN_EMAIL, ADMIN_PASSWORD)
        created = http.post(f"{API}/admin/users", headers=admin, json={
            "email": "fuzz@fidus.example", "username": "fuzz", "password": "fuzz-passphrase",
            "first_name": "Fuzz", "last_name": "Client"})
        assert created.status_code == 201, created.text
        http.post(f"{API}/admin/users/{created.json()['id']}/kyc", headers=admin,
                  json={"kyc_status": "approved"})
        client = _sign_in(http, "fuzz", "fuzz-passphrase")

    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) == LAST)
    assert len(operations) >= 40
    calls = sum(_exercise(operation, headers) for headers in (admin, client)
                for operation in operations)
    assert calls >= 2 * len(operations)


def _exercise(operation: Any, headers: dict[str, str]) -> int:
    calls = 0

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        # No `checks=`: every check schemathesis has, positive data acceptance made exact.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance],
                               additional_checks=[valid_data_passes_request_validation])

    check()
    return calls
