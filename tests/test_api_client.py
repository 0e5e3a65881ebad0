"""Client routes: the signed-in client's own data, and never another client's."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from backend.models._types import decimal_to_bson
from backend.models.documents import DocumentType
from backend.models.users import KycStatus
from backend.settings import Settings
from tests.api_support import API, api_settings, assert_error, services, signed_in_user
from tests.factories import ADMIN, investment_create, mt5_create

PDF = b"%PDF-1.7\n" + b"y" * 300
PNG = b"\x89PNG\r\n\x1a\n" + b"z" * 100


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, document_max_bytes=2048)


async def test_profile_read_and_limited_update(app: FastAPI, client: httpx.AsyncClient) -> None:
    user, headers = await signed_in_user(app, client)
    profile = await client.get(f"{API}/client/profile", headers=headers)
    assert profile.json()["email"] == user.email
    updated = await client.patch(f"{API}/client/profile", headers=headers,
                                 json={"phone": "+14155550123", "first_name": "Augusta"})
    assert updated.status_code == 200
    assert updated.json()["phone"] == "+14155550123"
    assert updated.json()["first_name"] == "Augusta"
    for forbidden in ({"email": "other@fidus.example"}, {"kyc_status": "approved"},
                      {"user_type": "admin"}, {"is_active": True}):
        assert_error(await client.patch(f"{API}/client/profile", headers=headers,
                                        json=forbidden), 422, "VALIDATION_ERROR")
    assert (await client.get(f"{API}/client/profile",
                             headers=headers)).json()["kyc_status"] == "approved"


async def test_own_investments_with_performance_and_nobody_elses(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    me, headers = await signed_in_user(app, client)
    other, _ = await signed_in_user(app, client)
    svc = services(app)
    mine = (await svc.investments.create(investment_create(me), actor=ADMIN)).investment
    theirs = (await svc.investments.create(investment_create(other), actor=ADMIN)).investment
    # As the MT5 sync records a valuation (money goes to the driver as Decimal128).
    await svc.investments.repo.update(mine.id, {  # type: ignore[arg-type]
        "current_value": decimal_to_bson(Decimal("10550.25")),
        "gain_amount": decimal_to_bson(Decimal("550.25")),
        "return_pct": decimal_to_bson(Decimal("5.50")),
        "performance_updated_at": svc.clock()}, expected_version=mine.version)

    listed = (await client.get(f"{API}/client/investments", headers=headers)).json()
    assert listed["total"] == 1
    [item] = listed["items"]
    assert item["id"] == str(mine.id)
    assert (item["current_value"], item["gain_amount"], item["return_pct"]) == (
        "10550.25", "550.25", "5.50")
    assert (await client.get(f"{API}/client/investments/{mine.id}",
                             headers=headers)).status_code == 200
    assert_error(await client.get(f"{API}/client/investments/{theirs.id}", headers=headers),
                 404, "NOT_FOUND")
    assert_error(await client.get(f"{API}/client/investments/{'0' * 24}", headers=headers),
                 404, "NOT_FOUND")


async def test_own_mt5_summaries_without_connection_secrets(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    me, headers = await signed_in_user(app, client)
    other, _ = await signed_in_user(app, client)
    svc = services(app)
    mine = await svc.mt5.create_mapping(mt5_create(me), actor=ADMIN)
    await svc.mt5.create_mapping(mt5_create(other), actor=ADMIN)
    summaries = (await client.get(f"{API}/client/mt5-accounts", headers=headers)).json()
    assert [s["account_id"] for s in summaries] == [mine.account_id]
    assert "investor-pass" not in str(summaries)
    assert "server" not in summaries[0]


async def test_documents_upload_list_download_and_limits(app: FastAPI,
                                                         client: httpx.AsyncClient) -> None:
    me, headers = await signed_in_user(app, client)
    other, _ = await signed_in_user(app, client)
    uploaded = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "passport"},
                                 files={"file": ("passport.pdf", PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    assert document["verification_status"] == "pending"
    assert document["size_bytes"] == len(PDF)

    listed = (await client.get(f"{API}/client/documents", headers=headers)).json()
    assert [d["id"] for d in listed] == [document["id"]]
    download = await client.get(f"{API}/client/documents/{document['id']}/content",
                                headers=headers)
    assert download.content == PDF
    assert 'filename="passport.pdf"' in download.headers["content-disposition"]

    too_big = await client.post(f"{API}/client/documents", headers=headers,
                                data={"document_type": "passport"},
                                files={"file": ("big.pdf", PDF * 10, "application/pdf")})
    assert_error(too_big, 413, "FILE_TOO_LARGE")
    wrong_type = await client.post(f"{API}/client/documents", headers=headers,
                                   data={"document_type": "passport"},
                                   files={"file": ("x.txt", b"hello", "text/plain")})
    assert_error(wrong_type, 415, "UNSUPPORTED_MEDIA_TYPE")
    disguised = await client.post(f"{API}/client/documents", headers=headers,
                                  data={"document_type": "passport"},
                                  files={"file": ("x.png", PDF, "image/png")})
    assert_error(disguised, 415, "MEDIA_TYPE_MISMATCH")
    bad_kind = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "selfie"},
                                 files={"file": ("x.png", PNG, "image/png")})
    assert_error(bad_kind, 422, "VALIDATION_ERROR")

    theirs = await services(app).documents.upload(
        other, document_type=DocumentType.PASSPORT, filename="theirs.png",
        mime_type="image/png", content=PNG)
    assert_error(await client.get(f"{API}/client/documents/{theirs.id}/content",
                                  headers=headers), 404, "NOT_FOUND")
    assert [d["id"] for d in (await client.get(f"{API}/client/documents",
                                                headers=headers)).json()] == [document["id"]]


async def test_staff_cannot_use_client_routes(app: FastAPI, client: httpx.AsyncClient) -> None:
    from backend.models.users import UserType

    _, headers = await signed_in_user(app, client, user_type=UserType.ADMIN,
                                      kyc=KycStatus.PENDING)
    assert_error(await client.get(f"{API}/client/investments", headers=headers), 403,
                 "FORBIDDEN")


async def test_unknown_paths_and_methods_answer_in_the_envelope(
        client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"{API}/nothing-here"), 404, "NOT_FOUND")
    assert_error(await client.delete(f"{API}/funds"), 405, "METHOD_NOT_ALLOWED")
    assert_error(await client.post(f"{API}/auth/login", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422)


async def test_documents_with_non_latin_names_download_for_client_and_admin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from tests.api_support import admin_headers

    _, headers = await signed_in_user(app, client)
    name = "John’s паспорт.pdf"
    uploaded = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "passport"},
                                 files={"file": (name, PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]
    own = await client.get(f"{API}/client/documents/{document_id}/content", headers=headers)
    assert own.status_code == 200 and own.content == PDF
    disposition = own.headers["content-disposition"]
    # Reduced to safe ASCII in both forms: the curly quote and the Cyrillic word are dropped.
    assert disposition == "attachment; filename=\"Johns_.pdf\"; filename*=UTF-8''Johns_.pdf"
    reviewer = await client.get(f"{API}/admin/documents/{document_id}/content",
                                headers=await admin_headers(client))
    assert reviewer.status_code == 200 and reviewer.content == PDF
