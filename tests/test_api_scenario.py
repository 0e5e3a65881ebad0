"""The issue's scenario, in process: the bootstrap admin onboards a client and records one
investment under the fund rules; the client sees exactly that investment."""

from __future__ import annotations

import httpx
import pytest

from backend.settings import Settings
from tests.api_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    api_settings,
    assert_error,
    bearer,
    login,
)


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


async def test_admin_onboards_a_client_who_sees_only_its_investment(
        client: httpx.AsyncClient) -> None:
    admin = bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    created = await client.post(f"{API}/admin/users", headers=admin, json={
        "email": "ada@fidus.example", "username": "ada", "password": "ada-long-passphrase",
        "first_name": "Ada", "last_name": "Lovelace"})
    assert created.status_code == 201
    client_id = created.json()["id"]
    kyc = await client.post(f"{API}/admin/users/{client_id}/kyc", headers=admin,
                            json={"kyc_status": "approved", "reason": "documents checked"})
    assert kyc.json()["kyc_status"] == "approved"

    body = {"client_id": client_id, "fund_code": "CORE", "principal_amount": "9999.99",
            "currency": "USD", "deposit_date": "2026-11-02"}
    assert_error(await client.post(f"{API}/admin/investments", headers=admin, json=body),
                 422, "FUND_MINIMUM_NOT_MET")
    body["principal_amount"] = "10000.00"
    key = admin | {"Idempotency-Key": "scenario-ada-core-0001"}
    first = await client.post(f"{API}/admin/investments", headers=key, json=body)
    assert first.status_code == 201
    again = await client.post(f"{API}/admin/investments", headers=key, json=body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = (await client.get(f"{API}/admin/investments", headers=admin,
                               params={"client_id": client_id})).json()
    assert listed["total"] == 1

    ada = bearer(await login(client, "ada", "ada-long-passphrase"))
    mine = (await client.get(f"{API}/client/investments", headers=ada)).json()
    assert [i["id"] for i in mine["items"]] == [first.json()["id"]]
    assert mine["items"][0]["principal_amount"] == "10000.00"
