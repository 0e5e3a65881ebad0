"""What the API document promises beyond each route's own answers: a method a path does not
serve (OPTIONS included) is 405 with an `Allow` naming exactly the methods it serves, and the
answers a request can get whatever the route (400 and 413 for a body, 503) are documented."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.settings import Settings
from tests.api_support import api_settings, assert_error

OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
SAMPLE_ID = "665f1c2ab8e4a1d2c3b4a5f6"


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


def _concrete(template: str) -> str:
    return re.sub(r"\{[^/]+?\}", SAMPLE_ID, template)


async def test_an_unserved_method_is_405_with_the_methods_the_path_serves(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    document: dict[str, Any] = app.openapi()
    checked = 0
    for template, item in document["paths"].items():
        path = _concrete(template)
        served = sorted(method.upper() for method in item)
        # A literal path such as /admin/users/statistics also fits /admin/users/{user_id}
        # before that route checks the id: those methods are routed there, not refused.
        routed = {method.upper() for other, methods in document["paths"].items()
                  if other != template and re.fullmatch(re.sub(r"\{[^/]+?\}", "[^/]+", other),
                                                        path)
                  for method in methods}
        for method in OTHER_METHODS:
            if method in served or method in routed:
                continue
            response = await client.request(method, path)
            assert_error(response, 405, "METHOD_NOT_ALLOWED")
            assert response.headers["allow"] == ", ".join(served), (method, template)
            checked += 1
    assert checked > 150


async def test_a_method_no_route_knows_is_405_not_422(client: httpx.AsyncClient) -> None:
    for method in ("FOO", "PROPFIND"):
        response = await client.request(method, "/api/v1/auth/login")
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "POST"


def test_every_operation_documents_the_answers_any_request_can_get(app: FastAPI) -> None:
    document: dict[str, Any] = app.openapi()
    for template, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "503" in responses or not template.startswith("/api/"), (method, template)
            if "requestBody" in operation:
                for status in ("400", "413", "422"):
                    assert status in responses, (status, method, template)
                    assert responses[status]["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorEnvelope"}
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "429" in login and "Retry-After" in login["429"]["headers"]
    assert "423" not in login


def _nullable(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in schema.get("anyOf", ()))


async def test_a_field_documented_as_nullable_accepts_null_and_no_other_does(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    from tests.api_support import admin_headers, services
    from tests.factories import make_user

    components = app.openapi()["components"]["schemas"]
    properties = components["UserUpdate"]["properties"]
    nullable = sorted(name for name, schema in properties.items() if _nullable(schema))
    assert nullable == ["phone", "version"]
    admin = await admin_headers(client)
    user = await make_user(services(app), phone="+14155550100")
    for name in properties:
        response = await client.patch(f"/api/v1/admin/users/{user.id}", headers=admin,
                                      json={name: None})
        if name in nullable:
            assert response.status_code == 200, (name, response.text)
        else:
            assert_error(response, 422)
    assert sorted(name for name, schema in components["ProfileUpdate"]["properties"].items()
                  if _nullable(schema)) == ["phone"]
    for model in ("ProspectUpdate", "Mt5AccountUpdate"):
        fields = components[model]["properties"]
        assert not any(_nullable(fields[name]) for name in ("name", "broker_code", "server",
                                                             "is_active") if name in fields)
