"""Admin routes: users, KYC/AML, investments with the fund rules and Idempotency-Key, funds,
the CRM pipeline, MT5 mappings, documents and the audit log; and who may call them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.models.documents import DocumentType
from backend.models.users import KycStatus, UserType
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


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await admin_headers(client)


def new_client_body(n: str, **overrides: Any) -> dict[str, Any]:
    body = {"email": f"grace{n}@fidus.example", "username": f"grace{n}",
            "password": "a-long-passphrase", "first_name": "Grace", "last_name": f"Hopper{n}"}
    body.update(overrides)
    return body


def investment_body(client_id: str, amount: str = "10000.00", **overrides: Any) -> dict[str, Any]:
    # Ten days ago: a confirmed deposit still in its incubation, whatever the day of the run.
    recent = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
    body = {"client_id": client_id, "fund_code": "CORE", "principal_amount": amount,
            "currency": "USD", "deposit_date": recent}
    body.update(overrides)
    return body


# --- users ---------------------------------------------------------------------------------


async def test_create_get_update_and_list_users(client: httpx.AsyncClient,
                                               admin: dict[str, str]) -> None:
    created = await client.post(f"{API}/admin/users", headers=admin,
                                json=new_client_body("1", phone="+14155550100"))
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["user_type"] == "client"
    assert user["kyc_status"] == "pending"
    assert "password" not in user and "password_hash" not in user

    fetched = await client.get(f"{API}/admin/users/{user['id']}", headers=admin)
    assert fetched.json() == user

    updated = await client.patch(f"{API}/admin/users/{user['id']}", headers=admin,
                                 json={"last_name": "Hopper-Murray", "version": 1})
    assert updated.status_code == 200
    assert updated.json()["last_name"] == "Hopper-Murray"
    assert updated.json()["version"] == 2
    stale = await client.patch(f"{API}/admin/users/{user['id']}", headers=admin,
                               json={"last_name": "Stale", "version": 1})
    assert_error(stale, 409, "VERSION_CONFLICT")

    found = await client.get(f"{API}/admin/users", headers=admin,
                             params={"q": "murray", "user_type": "client"})
    assert found.status_code == 200
    assert [u["id"] for u in found.json()["items"]] == [user["id"]]
    assert found.json()["total"] == 1


async def test_duplicate_user_gets_409_naming_the_field(client: httpx.AsyncClient,
                                                       admin: dict[str, str]) -> None:
    assert (await client.post(f"{API}/admin/users", headers=admin,
                              json=new_client_body("2"))).status_code == 201
    again = await client.post(f"{API}/admin/users", headers=admin,
                              json=new_client_body("2", username="another2"))
    assert_error(again, 409, "DUPLICATE")
    assert again.json()["error"]["details"]["field"] == "email"


async def test_invalid_user_body_gets_the_422_envelope(client: httpx.AsyncClient,
                                                      admin: dict[str, str]) -> None:
    response = await client.post(f"{API}/admin/users", headers=admin,
                                 json=new_client_body("3", password="short", extra="x"))
    assert_error(response, 422, "VALIDATION_ERROR")
    fields = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert ("body", "password") in fields and ("body", "extra") in fields


async def test_pagination_is_stable_and_bounded(app: FastAPI, client: httpx.AsyncClient,
                                               admin: dict[str, str]) -> None:
    for _ in range(5):
        await make_user(services(app))
    pages = [await client.get(f"{API}/admin/users", headers=admin,
                              params={"page": n, "page_size": 2, "user_type": "client"})
             for n in (1, 2, 3)]
    ids = [u["id"] for page in pages for u in page.json()["items"]]
    assert len(ids) == len(set(ids)) == 5
    assert {page.json()["total"] for page in pages} == {5}
    assert_error(await client.get(f"{API}/admin/users", headers=admin,
                                  params={"page_size": 101}), 422, "VALIDATION_ERROR")
    assert_error(await client.get(f"{API}/admin/users", headers=admin, params={"page": 0}),
                 422, "VALIDATION_ERROR")


async def test_statistics(app: FastAPI, client: httpx.AsyncClient,
                          admin: dict[str, str]) -> None:
    await make_user(services(app))
    stats = (await client.get(f"{API}/admin/users/statistics", headers=admin)).json()
    assert stats["total"] == 2
    assert stats["by_type"] == {"admin": 1, "client": 1}
    assert stats["active"] == 2 and stats["inactive"] == 0
    assert sum(row["count"] for row in stats["signups_per_month"]) == 2


async def test_kyc_and_aml_decisions(app: FastAPI, client: httpx.AsyncClient,
                                     admin: dict[str, str]) -> None:
    user = await make_user(services(app), kyc=None)
    approved = await client.post(f"{API}/admin/users/{user.id}/kyc", headers=admin,
                                 json={"kyc_status": "approved", "reason": "passport checked"})
    assert approved.status_code == 200
    assert approved.json()["kyc_status"] == "approved"
    again = await client.post(f"{API}/admin/users/{user.id}/kyc", headers=admin,
                              json={"kyc_status": "rejected", "reason": "changed my mind"})
    assert_error(again, 422, "TRANSITION_NOT_ALLOWED")
    no_reason = await client.post(f"{API}/admin/users/{user.id}/aml", headers=admin,
                                  json={"aml_status": "rejected"})
    assert_error(no_reason, 422, "REASON_REQUIRED")
    aml = await client.post(f"{API}/admin/users/{user.id}/aml", headers=admin,
                            json={"aml_status": "approved"})
    assert aml.json()["aml_status"] == "approved"
    assert_error(await client.post(f"{API}/admin/users/{'0' * 24}/kyc", headers=admin,
                                   json={"kyc_status": "approved"}), 404, "NOT_FOUND")


# --- investments and funds ----------------------------------------------------------------


async def test_funds_list_the_catalog_with_minimums(app: FastAPI,
                                                    client: httpx.AsyncClient) -> None:
    _, headers = await signed_in_user(app, client)
    funds = (await client.get(f"{API}/funds", headers=headers)).json()
    assert {f["code"]: f["minimum"] for f in funds} == {
        "CORE": "10000.00", "BALANCE": "50000.00", "DYNAMIC": "250000.00",
        "UNLIMITED": "250000.00"}
    assert_error(await client.get(f"{API}/funds"), 401)


async def test_investment_rules_and_idempotency(app: FastAPI, client: httpx.AsyncClient,
                                               admin: dict[str, str]) -> None:
    user = await make_user(services(app), kyc=KycStatus.APPROVED)
    pending_kyc = await make_user(services(app), kyc=None)
    below = await client.post(f"{API}/admin/investments", headers=admin,
                              json=investment_body(str(user.id), "9999.99"))
    assert_error(below, 422, "FUND_MINIMUM_NOT_MET")
    assert below.json()["error"]["details"]["minimum"] == "10000.00"
    float_amount = await client.post(f"{API}/admin/investments", headers=admin,
                                     json=investment_body(str(user.id), 10000.0))  # type: ignore[arg-type]
    assert_error(float_amount, 422, "VALIDATION_ERROR")
    no_kyc = await client.post(f"{API}/admin/investments", headers=admin,
                               json=investment_body(str(pending_kyc.id)))
    assert_error(no_kyc, 422, "KYC_NOT_APPROVED")

    key = {"Idempotency-Key": "scenario-key-0001"}
    first = await client.post(f"{API}/admin/investments", headers=admin | key,
                              json=investment_body(str(user.id)))
    assert first.status_code == 201, first.text
    assert first.json()["principal_amount"] == "10000.00"
    replay = await client.post(f"{API}/admin/investments", headers=admin | key,
                               json=investment_body(str(user.id)))
    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]
    reused = await client.post(f"{API}/admin/investments", headers=admin | key,
                               json=investment_body(str(user.id), "20000.00"))
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    duplicate = await client.post(f"{API}/admin/investments", headers=admin,
                                  json=investment_body(str(user.id)))
    assert_error(duplicate, 409, "DUPLICATE")

    listed = (await client.get(f"{API}/admin/investments", headers=admin,
                               params={"client_id": str(user.id)})).json()
    assert listed["total"] == 1
    assert listed["items"][0]["client_name"] == user.full_name
    assert (await client.get(f"{API}/admin/investments", headers=admin,
                             params={"fund_code": "BALANCE"})).json()["total"] == 0
    assert first.json()["status"] == "incubating"
    assert (await client.get(f"{API}/admin/investments", headers=admin,
                             params={"status": "incubating"})).json()["total"] == 1
    assert (await client.get(f"{API}/admin/investments", headers=admin,
                             params={"status": "active"})).json()["total"] == 0

    inv_id = first.json()["id"]
    assert_error(await client.post(f"{API}/admin/investments/{inv_id}/status", headers=admin,
                                   json={"status": "cancelled"}), 422, "REASON_REQUIRED")
    cancelled = await client.post(f"{API}/admin/investments/{inv_id}/status", headers=admin,
                                  json={"status": "cancelled", "reason": "entered twice"})
    assert cancelled.json()["status"] == "cancelled"
    assert_error(await client.post(f"{API}/admin/investments/{inv_id}/status", headers=admin,
                                   json={"status": "active"}), 422, "TRANSITION_NOT_ALLOWED")
    assert (await client.get(f"{API}/admin/investments/{inv_id}",
                             headers=admin)).json()["status"] == "cancelled"


# --- CRM -----------------------------------------------------------------------------------


async def test_crm_pipeline_from_lead_to_client(client: httpx.AsyncClient,
                                                admin: dict[str, str]) -> None:
    created = await client.post(f"{API}/admin/crm/prospects", headers=admin, json={
        "name": "Katherine Johnson", "email": "katherine@fidus.example",
        "next_follow_up": "2026-12-01T09:00:00Z"})
    assert created.status_code == 201, created.text
    prospect = created.json()
    assert prospect["stage"] == "lead"
    assert_error(await client.post(f"{API}/admin/crm/prospects", headers=admin, json={
        "name": "Again", "email": "katherine@fidus.example"}), 409, "DUPLICATE")

    due = await client.get(f"{API}/admin/crm/prospects", headers=admin,
                           params={"follow_up_due_by": "2026-12-02T00:00:00Z"})
    assert [p["id"] for p in due.json()["items"]] == [prospect["id"]]
    assert (await client.get(f"{API}/admin/crm/prospects", headers=admin,
                             params={"follow_up_due_by": "2026-11-30T00:00:00Z"})
            ).json()["total"] == 0
    assert_error(await client.get(f"{API}/admin/crm/prospects", headers=admin,
                                  params={"follow_up_due_by": "2026-12-02T00:00:00"}), 422)

    pid = prospect["id"]
    assert_error(await client.post(f"{API}/admin/crm/prospects/{pid}/stage", headers=admin,
                                   json={"stage": "won"}), 422, "TRANSITION_NOT_ALLOWED")
    assert_error(await client.post(f"{API}/admin/crm/prospects/{pid}/convert", headers=admin,
                                   json={"username": "katherine", "password": "a-long-pass",
                                         "first_name": "Katherine", "last_name": "Johnson"}),
                 422, "TRANSITION_NOT_ALLOWED")
    for stage in ("contacted", "qualified", "proposal", "negotiation", "won"):
        moved = await client.post(f"{API}/admin/crm/prospects/{pid}/stage", headers=admin,
                                  json={"stage": stage})
        assert moved.json()["stage"] == stage
    by_stage = await client.get(f"{API}/admin/crm/prospects", headers=admin,
                                params={"stage": "won"})
    assert by_stage.json()["total"] == 1

    body = {"username": "katherine", "password": "a-long-passphrase",
            "first_name": "Katherine", "last_name": "Johnson"}
    converted = await client.post(f"{API}/admin/crm/prospects/{pid}/convert", headers=admin,
                                  json=body)
    assert converted.status_code == 201, converted.text
    result = converted.json()
    assert result["client"]["email"] == "katherine@fidus.example"
    assert result["prospect"]["converted_client_id"] == result["client"]["id"]
    assert_error(await client.post(f"{API}/admin/crm/prospects/{pid}/convert", headers=admin,
                                   json=body), 409, "ALREADY_CONVERTED")


# --- MT5 -----------------------------------------------------------------------------------


async def test_mt5_mappings_never_show_the_password(app: FastAPI, client: httpx.AsyncClient,
                                                    admin: dict[str, str]) -> None:
    user = await make_user(services(app))
    body = {"account_id": "MT5-API-1", "client_id": str(user.id), "fund_code": "CORE",
            "mt5_login": 81234567, "broker_code": "MEXATLANTIC", "server": "MEXAtlantic-Real",
            "investor_password": "investor-secret-42", "currency": "USD"}
    created = await client.post(f"{API}/admin/mt5/accounts", headers=admin, json=body)
    assert created.status_code == 201, created.text
    mapping_id = created.json()["id"]
    updated = await client.patch(f"{API}/admin/mt5/accounts/{mapping_id}", headers=admin,
                                 json={"server": "MEXAtlantic-Real2",
                                       "investor_password": "rotated-secret-43"})
    assert updated.json()["server"] == "MEXAtlantic-Real2"
    listed = await client.get(f"{API}/admin/mt5/accounts", headers=admin,
                              params={"client_id": str(user.id)})
    fetched = await client.get(f"{API}/admin/mt5/accounts/{mapping_id}", headers=admin)
    audit = await client.get(f"{API}/admin/audit", headers=admin,
                             params={"entity_type": "mt5_account"})
    stored = await services(app).mt5.repo.get(mapping_id)
    for response in (created, updated, listed, fetched, audit):
        assert response.status_code in (200, 201)
        text = response.text
        for leak in ("secret-4", "investor_password", stored.investor_password_encrypted):
            assert leak not in text, leak
    assert listed.json()["total"] == 1
    assert_error(await client.post(f"{API}/admin/mt5/accounts", headers=admin, json=body),
                 409, "DUPLICATE")


# --- documents -----------------------------------------------------------------------------


async def test_documents_pending_verify_and_reject(app: FastAPI, client: httpx.AsyncClient,
                                                   admin: dict[str, str]) -> None:
    user = await make_user(services(app))
    docs = services(app).documents
    first = await docs.upload(user, document_type=DocumentType.PASSPORT, filename="p.pdf",
                              mime_type="application/pdf", content=PDF)
    second = await docs.upload(user, document_type=DocumentType.PROOF_OF_ADDRESS,
                               filename="a.pdf", mime_type="application/pdf", content=PDF + b"2")
    pending = (await client.get(f"{API}/admin/documents/pending", headers=admin)).json()
    assert [d["id"] for d in pending["items"]] == [str(first.id), str(second.id)]
    content = await client.get(f"{API}/admin/documents/{first.id}/content", headers=admin)
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"

    verified = await client.post(f"{API}/admin/documents/{first.id}/review", headers=admin,
                                 json={"verification_status": "verified"})
    assert verified.json()["verification_status"] == "verified"
    assert_error(await client.post(f"{API}/admin/documents/{second.id}/review", headers=admin,
                                   json={"verification_status": "rejected"}),
                 422, "REASON_REQUIRED")
    rejected = await client.post(f"{API}/admin/documents/{second.id}/review", headers=admin,
                                 json={"verification_status": "rejected",
                                       "reason": "address unreadable"})
    assert rejected.json()["rejection_reason"] == "address unreadable"
    assert (await client.get(f"{API}/admin/documents/pending",
                             headers=admin)).json()["total"] == 0


# --- audit ---------------------------------------------------------------------------------


async def test_audit_log_filters_by_entity_actor_and_time(app: FastAPI,
                                                          client: httpx.AsyncClient,
                                                          admin: dict[str, str]) -> None:
    me = (await client.get(f"{API}/auth/me", headers=admin)).json()
    created = (await client.post(f"{API}/admin/users", headers=admin,
                                 json=new_client_body("9"))).json()
    await client.post(f"{API}/admin/users/{created['id']}/kyc", headers=admin,
                      json={"kyc_status": "approved"})
    by_entity = (await client.get(f"{API}/admin/audit", headers=admin, params={
        "entity_type": "user", "entity_id": created["id"]})).json()
    assert [r["action"] for r in by_entity["items"]] == ["user.kyc.approved", "user.create"]
    assert by_entity["items"][0]["before"]["kyc_status"] == "pending"
    assert by_entity["items"][0]["after"]["kyc_status"] == "approved"
    assert all("password_hash" not in (r["after"] or {}) for r in by_entity["items"])
    by_actor = (await client.get(f"{API}/admin/audit", headers=admin,
                                 params={"actor_id": me["id"]})).json()
    assert by_actor["total"] == 2
    at = by_entity["items"][0]["at"]
    since = (await client.get(f"{API}/admin/audit", headers=admin, params={
        "entity_id": created["id"], "since": at})).json()
    until = (await client.get(f"{API}/admin/audit", headers=admin, params={
        "entity_id": created["id"], "until": at})).json()
    assert [r["action"] for r in since["items"]] == ["user.kyc.approved"]
    assert [r["action"] for r in until["items"]] == ["user.create"]


# --- roles ---------------------------------------------------------------------------------


def admin_operations(app: FastAPI) -> list[tuple[str, str]]:
    return [(method.upper(), path)
            for path, item in app.openapi()["paths"].items() if path.startswith(f"{API}/admin/")
            for method in item]


def concrete(path: str) -> str:
    for name in ("user_id", "investment_id", "prospect_id", "account_id", "document_id",
                 "client_id"):
        path = path.replace("{" + name + "}", "0" * 24)
    path = path.replace("{number}", "1")
    assert "{" not in path, path
    return path


async def test_a_client_token_reaches_no_admin_route(app: FastAPI,
                                                     client: httpx.AsyncClient) -> None:
    _, headers = await signed_in_user(app, client)
    operations = admin_operations(app)
    assert len(operations) >= 25
    for method, path in operations:
        response = await client.request(method, concrete(path), headers=headers, json={})
        assert_error(response, 403, "FORBIDDEN")


async def test_managers_read_and_work_the_crm_but_decide_nothing(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    client_user = await make_user(services(app))
    _, manager = await signed_in_user(app, client, user_type=UserType.MANAGER)
    assert (await client.get(f"{API}/admin/users", headers=manager)).status_code == 200
    assert (await client.get(f"{API}/admin/investments", headers=manager)).status_code == 200
    assert (await client.post(f"{API}/admin/crm/prospects", headers=manager, json={
        "name": "Dorothy Vaughan", "email": "dorothy@fidus.example"})).status_code == 201
    refused = [
        ("POST", f"{API}/admin/users", new_client_body("m")),
        ("POST", f"{API}/admin/users/{client_user.id}/kyc", {"kyc_status": "rejected",
                                                             "reason": "no"}),
        ("POST", f"{API}/admin/investments", investment_body(str(client_user.id))),
        ("GET", f"{API}/admin/mt5/accounts", None),
        ("GET", f"{API}/admin/documents/pending", None),
        ("GET", f"{API}/admin/audit", None),
    ]
    for method, path, body in refused:
        assert_error(await client.request(method, path, headers=manager, json=body), 403)
