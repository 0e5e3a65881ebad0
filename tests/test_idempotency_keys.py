"""Every creating route takes an Idempotency-Key: the same request again answers the first
result (200), a different request under the key is refused (409 IDEMPOTENCY_KEY_REUSED), and a
retry after a 503 whose write had in fact been applied finds that write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from backend.errors import DatabaseUnavailable
from backend.models.users import UserType
from backend.repositories.base import Repository
from backend.settings import Settings
from tests.api_support import (
    API,
    admin_headers,
    api_settings,
    assert_error,
    services,
    signed_in_user,
)
from tests.factories import make_user

PDF = b"%PDF-1.7\n" + b"x" * 200


@dataclass(frozen=True)
class Scenario:
    """A route under test. `prepare` returns the headers to send and the context `send`
    needs; `send(variant)` posts the request (variant 0 is the original, 1 a different one)."""

    name: str
    collection: str
    repository: Callable[[FastAPI], Repository[Any]]
    prepare: Callable[[FastAPI, httpx.AsyncClient], Awaitable[tuple[dict[str, str], Any]]]
    send: Callable[[httpx.AsyncClient, dict[str, str], Any, int], Awaitable[httpx.Response]]
    created_id: Callable[[dict[str, Any]], str]
    create_action: str


async def _as_admin(app: FastAPI, http: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    return await admin_headers(http), None


async def _prospect(http: httpx.AsyncClient, headers: dict[str, str], _: Any,
                    variant: int) -> httpx.Response:
    return await http.post(f"{API}/admin/crm/prospects", headers=headers, json={
        "name": "Katherine Johnson" if variant == 0 else "Dorothy Vaughan",
        "email": "katherine@fidus.example", "source": "referral"})


async def _user(http: httpx.AsyncClient, headers: dict[str, str], _: Any,
                variant: int) -> httpx.Response:
    return await http.post(f"{API}/admin/users", headers=headers, json={
        "email": "grace@fidus.example", "username": "grace", "password": "a-long-passphrase",
        "first_name": "Grace", "last_name": "Hopper" if variant == 0 else "Brewster"})


async def _mapping_context(app: FastAPI, http: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    return await admin_headers(http), await make_user(services(app))


async def _mapping(http: httpx.AsyncClient, headers: dict[str, str], client: Any,
                   variant: int) -> httpx.Response:
    return await http.post(f"{API}/admin/mt5/accounts", headers=headers, json={
        "account_id": "MT5-KEY-1", "client_id": str(client.id), "fund_code": "CORE",
        "mt5_login": 81234567 + variant, "broker_code": "MEXATLANTIC",
        "server": "MEXAtlantic-Real", "investor_password": "investor-secret-42",
        "currency": "USD"})


async def _uploader(app: FastAPI, http: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    _, headers = await signed_in_user(app, http)
    return headers, None


async def _document(http: httpx.AsyncClient, headers: dict[str, str], _: Any,
                    variant: int) -> httpx.Response:
    return await http.post(f"{API}/client/documents", headers=headers,
                           data={"document_type": "passport"},
                           files={"file": ("passport.pdf", PDF + bytes([variant]),
                                           "application/pdf")})


async def _won_prospect(app: FastAPI, http: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    headers = await admin_headers(http)
    created = await http.post(f"{API}/admin/crm/prospects", headers=headers, json={
        "name": "Mary Jackson", "email": "mary@fidus.example"})
    prospect_id = created.json()["id"]
    for stage in ("contacted", "qualified", "proposal", "negotiation", "won"):
        moved = await http.post(f"{API}/admin/crm/prospects/{prospect_id}/stage",
                                headers=headers, json={"stage": stage})
        assert moved.status_code == 200, moved.text
    return headers, prospect_id


async def _conversion(http: httpx.AsyncClient, headers: dict[str, str], prospect_id: Any,
                      variant: int) -> httpx.Response:
    return await http.post(f"{API}/admin/crm/prospects/{prospect_id}/convert", headers=headers,
                           json={"username": "mary" if variant == 0 else "mary2",
                                 "password": "a-long-passphrase", "first_name": "Mary",
                                 "last_name": "Jackson"})


SCENARIOS = [
    Scenario("prospect", "crm_prospects", lambda app: services(app).repos.prospects,
             _as_admin, _prospect, lambda body: body["id"], "prospect.create"),
    Scenario("user", "users", lambda app: services(app).repos.users,
             _as_admin, _user, lambda body: body["id"], "user.create"),
    Scenario("mt5 mapping", "mt5_accounts", lambda app: services(app).repos.mt5_accounts,
             _mapping_context, _mapping, lambda body: body["id"], "mt5_account.create"),
    Scenario("document", "documents", lambda app: services(app).repos.documents,
             _uploader, _document, lambda body: body["id"], "document.upload"),
    Scenario("conversion", "users", lambda app: services(app).repos.users,
             _won_prospect, _conversion, lambda body: body["client"]["id"], "user.create"),
]


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


def _with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def _stored(app: FastAPI, scenario: Scenario, created_id: str) -> int:
    return await scenario.repository(app)._count({"_id": ObjectId(created_id)})


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_the_same_key_answers_the_first_result_and_a_different_request_is_refused(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario,
) -> None:
    headers, context = await scenario.prepare(app, client)
    first = await scenario.send(client, _with_key(headers, "create-once-0001"), context, 0)
    assert first.status_code == 201, first.text
    again = await scenario.send(client, _with_key(headers, "create-once-0001"), context, 0)
    assert again.status_code == 200, again.text
    assert scenario.created_id(again.json()) == scenario.created_id(first.json())
    other = await scenario.send(client, _with_key(headers, "create-once-0001"), context, 1)
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert await _stored(app, scenario, scenario.created_id(first.json())) == 1
    page = await services(app).audit.search(entity_id=scenario.created_id(first.json()))
    assert [r.action for r in page.items] == [scenario.create_action]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_a_retry_after_an_unknown_outcome_finds_the_write(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario,
) -> None:
    """The insert reaches the database, its reply does not (503); the retry under the same key
    finds the stored document and answers it, and nothing is stored twice."""
    headers, context = await scenario.prepare(app, client)
    repository = scenario.repository(app)
    real_create = repository.create

    async def reply_lost(item: Any, **kwargs: Any) -> Any:
        await real_create(item, **kwargs)
        raise DatabaseUnavailable("the database is unavailable: timed out")

    repository.create = reply_lost  # type: ignore[method-assign]
    lost = await scenario.send(client, _with_key(headers, "unknown-outcome-1"), context, 0)
    repository.create = real_create  # type: ignore[method-assign]
    assert_error(lost, 503, "DATABASE_UNAVAILABLE")

    retry = await scenario.send(client, _with_key(headers, "unknown-outcome-1"), context, 0)
    assert retry.status_code == 200, retry.text
    created_id = scenario.created_id(retry.json())
    if "prospect" in retry.json():
        # A conversion the first attempt left half-done is finished by the retry.
        assert retry.json()["prospect"]["converted_client_id"] == created_id
    assert await _stored(app, scenario, created_id) == 1
    assert await repository._count({"idempotency_key": "unknown-outcome-1"}) == 1
    await services(app).audit.relay()
    page = await services(app).audit.search(entity_id=created_id)
    assert [r.action for r in page.items] == [scenario.create_action]


async def test_a_key_is_the_uploaders_own(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Another client's upload under the same key is refused without naming the document."""
    _, mine = await signed_in_user(app, client)
    _, theirs = await signed_in_user(app, client, user_type=UserType.CLIENT)
    first = await _document(client, _with_key(mine, "upload-key-0001"), None, 0)
    assert first.status_code == 201, first.text
    other = await _document(client, _with_key(theirs, "upload-key-0001"), None, 0)
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert other.json()["error"]["details"] == {}
