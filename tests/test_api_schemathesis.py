"""schemathesis against the OpenAPI document, signed in as an admin and as a client: no 5xx,
and every status, content type, header and body as the document declares.

A few examples per operation keep the run short on the embedded database. schemathesis runs
the app (and its lifespan) on an event loop of its own; the calls here are synchronous.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.api.app import create_app
from tests.api_support import ADMIN_EMAIL, ADMIN_PASSWORD, API, api_settings

EXAMPLES_PER_OPERATION = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
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
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
    return calls
