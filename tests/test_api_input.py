"""Canonical input at the API: money, dates and timestamps in one form each, free text without
control or bidi-override characters, and upload names reduced to safe ASCII."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import Decimal128, ObjectId
from fastapi import FastAPI

from backend.models.documents import DocumentType
from backend.services.documents import safe_filename
from backend.settings import Settings
from tests.api_support import API, admin_headers, api_settings, assert_error, services
from tests.api_support import signed_in_user as signed_in
from tests.factories import make_user

PDF = b"%PDF-1.7\n" + b"x" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100
RLO = "\u202e"


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


def investment(client_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": client_id, "fund_code": "CORE",
                            "principal_amount": "10000.00", "currency": "USD",
                            "deposit_date": "2026-11-02"}
    body.update(overrides)
    return body


async def _stored_investment(app: FastAPI, investment_id: str) -> dict[str, Any]:
    raw = await app.state.connection.database["investments"].find_one(
        {"_id": ObjectId(investment_id)})
    assert raw is not None
    return dict(raw)


@pytest.mark.parametrize("amount", [
    "1E4", "10000.1000000", "\u0661\u0660\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10\uff10",
    "12_500.00", "+13000.00", " 13500.00 ", "13500.001", 13500.5,
])
async def test_money_in_a_non_canonical_form_is_refused(
        app: FastAPI, client: httpx.AsyncClient, amount: Any) -> None:
    admin = await admin_headers(client)
    holder = await make_user(services(app), kyc=None)
    response = await client.post(f"{API}/admin/investments", headers=admin,
                                 json=investment(str(holder.id), principal_amount=amount))
    assert_error(response, 422, "VALIDATION_ERROR")
    assert response.json()["error"]["details"][0]["loc"] == ["body", "principal_amount"]


async def test_money_as_a_json_integer_is_stored_to_the_cent(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    from backend.models.users import KycStatus

    admin = await admin_headers(client)
    holder = await make_user(services(app), kyc=KycStatus.APPROVED)
    created = await client.post(f"{API}/admin/investments", headers=admin,
                                json=investment(str(holder.id), principal_amount=25000))
    assert created.status_code == 201, created.text
    assert created.json()["principal_amount"] == "25000.00"
    stored = await _stored_investment(app, created.json()["id"])
    assert stored["principal_amount"] == Decimal128("25000.00")
    assert str(stored["principal_amount"]) == "25000.00"

    other = await make_user(services(app), kyc=KycStatus.APPROVED)
    short = await client.post(f"{API}/admin/investments", headers=admin,
                              json=investment(str(other.id), principal_amount="12500.5"))
    assert short.status_code == 201, short.text
    assert str((await _stored_investment(app, short.json()["id"]))["principal_amount"]) == (
        "12500.50")


@pytest.mark.parametrize("day", ["0001-01-01", "1900-06-30", "1969-12-31", "1767225600",
                                 1767225600, "2026-11-02T00:00:00Z", "02/11/2026"])
async def test_a_deposit_date_outside_1970_to_today_or_not_iso_is_refused(
        app: FastAPI, client: httpx.AsyncClient, day: Any) -> None:
    admin = await admin_headers(client)
    holder = await make_user(services(app), kyc=None)
    response = await client.post(f"{API}/admin/investments", headers=admin,
                                 json=investment(str(holder.id), deposit_date=day))
    assert_error(response, 422, "VALIDATION_ERROR")
    assert response.json()["error"]["details"][0]["loc"] == ["body", "deposit_date"]


async def test_a_deposit_date_after_today_is_refused(app: FastAPI,
                                                     client: httpx.AsyncClient) -> None:
    from backend.models.users import KycStatus

    admin = await admin_headers(client)
    holder = await make_user(services(app), kyc=KycStatus.APPROVED)
    tomorrow = services(app).clock().date() + timedelta(days=1)
    response = await client.post(f"{API}/admin/investments", headers=admin,
                                 json=investment(str(holder.id), deposit_date=tomorrow.isoformat()))
    assert_error(response, 422, "DEPOSIT_DATE_IN_FUTURE")


@pytest.mark.parametrize("moment", ["0.5", "1767225600", "2026-11-02", "yesterday"])
async def test_timestamps_are_iso_8601_strings_only(client: httpx.AsyncClient,
                                                    moment: str) -> None:
    admin = await admin_headers(client)
    for name in ("since", "until"):
        response = await client.get(f"{API}/admin/audit", headers=admin, params={name: moment})
        assert_error(response, 422, "VALIDATION_ERROR")
    due = await client.get(f"{API}/admin/crm/prospects", headers=admin,
                           params={"follow_up_due_by": moment})
    assert_error(due, 422, "VALIDATION_ERROR")
    fine = await client.get(f"{API}/admin/audit", headers=admin,
                            params={"until": "2026-11-02T09:30:00+01:00"})
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("text", ["Ada\x00", "Ada\nLovelace", f"Ada{RLO}ecalevol", "Ada\x85",
                                  "Ada\u2066x\u2069"])
async def test_names_refuse_control_and_bidi_characters(
        app: FastAPI, client: httpx.AsyncClient, text: str) -> None:
    admin = await admin_headers(client)
    created = await client.post(f"{API}/admin/users", headers=admin, json={
        "email": "ada@fidus.example", "username": "ada", "password": "a-long-passphrase",
        "first_name": text, "last_name": "Lovelace"})
    assert_error(created, 422, "VALIDATION_ERROR")
    _, headers = await signed_in(app, client)
    profile = await client.patch(f"{API}/client/profile", headers=headers,
                                 json={"last_name": text})
    assert_error(profile, 422, "VALIDATION_ERROR")
    prospect = await client.post(f"{API}/admin/crm/prospects", headers=admin, json={
        "name": "Grace", "email": "grace@fidus.example", "source": text})
    assert_error(prospect, 422, "VALIDATION_ERROR")


async def test_multi_line_text_keeps_line_breaks_but_not_other_controls(
        client: httpx.AsyncClient) -> None:
    admin = await admin_headers(client)
    body = {"name": "Grace Hopper", "email": "grace@fidus.example"}
    kept = await client.post(f"{API}/admin/crm/prospects", headers=admin,
                             json=body | {"notes": "met at the fair\r\n\tcall back in May"})
    assert kept.status_code == 201, kept.text
    assert kept.json()["notes"] == "met at the fair\r\n\tcall back in May"
    for notes in ("bell\x07", f"see {RLO}fdp.exe", "nul\x00"):
        refused = await client.post(f"{API}/admin/crm/prospects", headers=admin,
                                    json=body | {"email": "other@fidus.example",
                                                 "notes": notes})
        assert_error(refused, 422, "VALIDATION_ERROR")


def test_the_database_validator_refuses_what_the_models_refuse() -> None:
    import re

    from backend.db.schema_registry import get_registry

    users = get_registry()["users"].json_schema["properties"]
    prospects = get_registry()["crm_prospects"].json_schema["properties"]
    for text in ("Ada\x00", "Ada\n", f"Ada{RLO}", "\x7f"):
        assert re.search(users["first_name"]["pattern"], text) is None, text
    assert re.search(users["first_name"]["pattern"], "Zoë O'Brien-Łukasz") is not None
    assert re.search(prospects["notes"]["pattern"], "two\nlines\n") is not None
    assert re.search(prospects["notes"]["pattern"], f"a{RLO}b") is None


@pytest.mark.parametrize(("given", "stored"), [
    ("passport.pdf", "passport.pdf"),
    ("../../etc/Passport Scan (1).PDF", "Passport_Scan_1_.PDF"),
    ("C:\\Users\\ada\\scan.pdf", "scan.pdf"),
    ("Zoë’s паспорт.pdf", "Zoes_.pdf"),
    ("scan", "scan.pdf"),
    (".pdf", "pdf.pdf"),
])
async def test_upload_names_are_stored_as_safe_ascii_with_the_right_extension(
        app: FastAPI, client: httpx.AsyncClient, given: str, stored: str) -> None:
    _, headers = await signed_in(app, client)
    uploaded = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "passport"},
                                 files={"file": (given, PDF, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["original_filename"] == stored
    download = await client.get(f"{API}/client/documents/{uploaded.json()['id']}/content",
                                headers=headers)
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{stored}\"; filename*=UTF-8''{stored}")


@pytest.mark.parametrize("given", [f"invoice{RLO}fdp.exe", "passport.pdf.exe", "photo.png",
                                   "scan.pdf.", "report.html"])
async def test_an_upload_whose_extension_is_not_its_content_type_is_refused(
        app: FastAPI, client: httpx.AsyncClient, given: str) -> None:
    _, headers = await signed_in(app, client)
    response = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "passport"},
                                 files={"file": (given, PDF, "application/pdf")})
    if given == "scan.pdf.":
        # A trailing dot is dropped: the name is scan.pdf, which matches.
        assert response.status_code == 201, response.text
        assert response.json()["original_filename"] == "scan.pdf"
        return
    assert_error(response, 415, "EXTENSION_MISMATCH")


async def test_a_stored_name_from_before_is_served_as_safe_ascii(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user, headers = await signed_in(app, client)
    document = await services(app).documents.upload(
        user, document_type=DocumentType.PASSPORT, filename="plain.png", mime_type="image/png",
        content=PNG)
    # A name stored before uploads were cleaned (Cyrillic, a bidi override, quotes).
    await app.state.connection.database["documents"].update_one(
        {"_id": document.id}, {"$set": {"original_filename": f'паспорт "x"{RLO}gnp.exe'}},
        bypass_document_validation=True)
    for path, auth in ((f"{API}/client/documents/{document.id}/content", headers),
                       (f"{API}/admin/documents/{document.id}/content",
                        await admin_headers(client))):
        download = await client.get(path, headers=auth)
        assert download.status_code == 200, download.text
        assert download.headers["content-disposition"] == (
            "attachment; filename=\"x_gnp.exe\"; filename*=UTF-8''x_gnp.exe")


def test_safe_filename_keeps_only_safe_ascii() -> None:
    for name in (f"a{RLO}b.pdf", "a\x00b.pdf", "a\"b'.pdf", "ａｂ.pdf", "a b;c=d.pdf", "é" * 300):
        safe = safe_filename(name)
        assert safe and len(safe) <= 120
        assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in safe), safe
    assert safe_filename("x" * 300 + ".pdf").endswith(".pdf")
