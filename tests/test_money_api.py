"""The money engine through the API: schedules, payouts (exactly once), obligations, the
ledger, early redemption, pending deposits, invitation-only funds and the lifecycle pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from backend.services.audit import Actor
from backend.settings import Settings
from tests.api_support import (
    API,
    admin_headers,
    api_settings,
    assert_error,
    install_clock,
    services,
    signed_in_user,
)

TODAY = datetime.now(UTC).date()


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await admin_headers(client)


async def invest(client: httpx.AsyncClient, admin: dict[str, str], client_id: str, *,
                 fund: str = "CORE", amount: str = "100000.00", deposit: date,
                 **extra: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/admin/investments", headers=admin, json={
        "client_id": client_id, "fund_code": fund, "principal_amount": amount,
        "currency": "USD", "deposit_date": deposit.isoformat(), **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def schedule(client: httpx.AsyncClient, headers: dict[str, str],
                   investment_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/admin/investments/{investment_id}/schedule",
                                headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pay(client: httpx.AsyncClient, admin: dict[str, str], investment_id: str, number: int,
        key: str, **body: Any) -> Any:
    payload = {"paid_on": TODAY.isoformat(), "reference": "WIRE-0001", **body}
    return client.post(f"{API}/admin/investments/{investment_id}/schedule/{number}/payout",
                       headers=admin | {"Idempotency-Key": key}, json=payload)


async def test_a_matured_core_investment_shows_its_whole_schedule_due(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    investment = await invest(client, admin, str(user.id), deposit=date(2025, 1, 31))
    assert investment["status"] == "matured"
    assert investment["incubation_end_date"] == "2025-03-31"
    assert investment["maturity_date"] == "2026-03-31"
    assert investment["terms_version"] == 1
    body = await schedule(client, admin, investment["id"])
    items = body["items"]
    assert [i["due_date"] for i in items[:3]] == ["2025-04-30", "2025-05-31", "2025-06-30"]
    assert [i["amount"] for i in items[:12]] == ["1500.00"] * 12
    assert items[12] == {**items[12], "kind": "principal", "amount": "100000.00",
                         "due_date": "2026-03-31", "status": "due"}
    assert {i["status"] for i in items} == {"due"}
    assert body["totals"] == {"scheduled": "0.00", "due": "118000.00", "paid": "0.00",
                              "currency": "USD", "unpriced_items": 0}
    ledger = (await client.get(f"{API}/admin/ledger", headers=admin,
                               params={"investment_id": investment["id"]})).json()
    assert [(e["kind"], e["direction"], e["amount"]) for e in ledger["items"]] == [
        ("subscription", "in", "100000.00")]


async def test_a_payout_is_booked_once_and_answered_again_for_its_key(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    investment = await invest(client, admin, str(user.id), deposit=date(2025, 1, 31))
    first = await pay(client, admin, investment["id"], 1, "payout-key-0001")
    assert first.status_code == 201, first.text
    assert first.json()["item"]["status"] == "paid"
    assert first.json()["ledger_entry"]["kind"] == "interest_paid"
    assert first.json()["ledger_entry"]["amount"] == "1500.00"
    again = await pay(client, admin, investment["id"], 1, "payout-key-0001")
    assert again.status_code == 200
    assert again.json()["ledger_entry"]["id"] == first.json()["ledger_entry"]["id"]
    assert_error(await pay(client, admin, investment["id"], 1, "payout-key-0002"),
                 409, "ALREADY_PAID")
    assert_error(await pay(client, admin, investment["id"], 2, "payout-key-0003",
                           amount="1500.01"), 409, "AMOUNT_MISMATCH")
    assert_error(await pay(client, admin, investment["id"], 2, "payout-key-0004",
                           paid_on=(TODAY + timedelta(days=1)).isoformat()),
                 422, "PAID_ON_IN_FUTURE")
    no_key = await client.post(
        f"{API}/admin/investments/{investment['id']}/schedule/2/payout", headers=admin,
        json={"paid_on": TODAY.isoformat(), "reference": "WIRE"})
    assert_error(no_key, 422, "IDEMPOTENCY_KEY_REQUIRED")
    body = await schedule(client, admin, investment["id"])
    assert body["totals"]["paid"] == "1500.00" and body["totals"]["due"] == "116500.00"
    audit = services(app).repos.audit_log
    page = await audit.search(entity_type="schedule_item", action="schedule_item.paid.interest")
    assert page.total == 1


async def test_twenty_concurrent_payouts_of_one_item_store_one_ledger_entry(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    investment = await invest(client, admin, str(user.id), deposit=date(2025, 1, 31))
    responses = await asyncio.gather(*(
        pay(client, admin, investment["id"], 3, f"race-key-{n:04d}") for n in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "ALREADY_PAID"}
    entries = await services(app).repos.ledger.of_investment(ObjectId(investment["id"]))
    assert sorted(e.kind.value for e in entries) == ["interest_paid", "subscription"]
    item = next(i for i in (await schedule(client, admin, investment["id"]))["items"]
                if i["number"] == 3)
    assert item["status"] == "paid"


async def test_items_not_due_cancelled_or_unpriced_are_refused(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    recent = await invest(client, admin, str(user.id), deposit=TODAY - timedelta(days=10))
    assert recent["status"] == "incubating"
    assert_error(await pay(client, admin, recent["id"], 1, "not-due-0001"), 409, "NOT_DUE")
    unlimited = await invest(client, admin, str(user.id), fund="UNLIMITED", amount="250000.00",
                             deposit=date(2025, 1, 15))
    body = await schedule(client, admin, unlimited["id"])
    assert body["items"][0]["kind"] == "performance_share" and body["items"][0]["amount"] is None
    assert body["totals"]["unpriced_items"] == 4
    assert_error(await pay(client, admin, unlimited["id"], 1, "unpriced-0001"),
                 409, "AMOUNT_NOT_SET")
    cancelled = await client.post(f"{API}/admin/investments/{recent['id']}/status", headers=admin,
                                  json={"status": "cancelled", "reason": "recorded twice"})
    assert cancelled.status_code == 200, cancelled.text
    body = await schedule(client, admin, recent["id"])
    assert {i["status"] for i in body["items"]} == {"cancelled"}
    entries = (await client.get(f"{API}/admin/ledger", headers=admin,
                                params={"investment_id": recent["id"]})).json()["items"]
    assert [(e["kind"], e["direction"]) for e in entries] == [("subscription", "in"),
                                                              ("reversal", "out")]
    assert entries[1]["reverses"] == entries[0]["id"]
    assert_error(await pay(client, admin, recent["id"], 1, "cancelled-0001"), 409,
                 "ITEM_CANCELLED")


async def test_an_invitation_only_fund_needs_a_reason(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    body = {"client_id": str(user.id), "fund_code": "DYNAMIC", "principal_amount": "250000.00",
            "currency": "USD", "deposit_date": "2025-06-30"}
    assert_error(await client.post(f"{API}/admin/investments", headers=admin, json=body),
                 422, "INVITATION_REQUIRED")
    invited = await invest(client, admin, str(user.id), fund="DYNAMIC", amount="250000.00",
                           deposit=date(2025, 6, 30), invitation_reason="referred by the board")
    items = (await schedule(client, admin, invited["id"]))["items"]
    assert [(i["due_date"], i["amount"]) for i in items] == [
        ("2026-02-28", "52500.00"), ("2026-08-30", "52500.00"), ("2026-08-30", "250000.00")]


async def test_a_pending_deposit_waits_and_confirmation_builds_its_schedule(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    pending = await invest(client, admin, str(user.id), deposit=TODAY - timedelta(days=5),
                           deposit_received=False)
    assert pending["status"] == "pending" and pending["maturity_date"] is None
    assert (await schedule(client, admin, pending["id"]))["items"] == []
    assert (await client.get(f"{API}/admin/ledger", headers=admin,
                             params={"investment_id": pending["id"]})).json()["total"] == 0
    arrived = TODAY - timedelta(days=1)
    confirmed = await client.post(
        f"{API}/admin/investments/{pending['id']}/status", headers=admin,
        json={"status": "incubating", "deposit_date": arrived.isoformat()})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "incubating"
    assert confirmed.json()["deposit_date"].startswith(arrived.isoformat())
    items = (await schedule(client, admin, pending["id"]))["items"]
    assert len(items) == 13 and {i["status"] for i in items} == {"scheduled"}
    ledger = (await client.get(f"{API}/admin/ledger", headers=admin,
                               params={"investment_id": pending["id"]})).json()["items"]
    assert [(e["kind"], e["effective_date"]) for e in ledger] == [
        ("subscription", arrived.isoformat())]


async def test_clients_see_only_their_own_schedule_and_ledger_and_wait_for_maturity(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    owner, owner_headers = await signed_in_user(app, client)
    _, other_headers = await signed_in_user(app, client)
    young = await invest(client, admin, str(owner.id), deposit=TODAY - timedelta(days=10))
    old = await invest(client, admin, str(owner.id), amount="20000.00", deposit=date(2025, 1, 31))
    mine = await client.get(f"{API}/client/investments/{young['id']}/schedule",
                            headers=owner_headers)
    assert mine.status_code == 200 and len(mine.json()["items"]) == 13
    assert_error(await client.get(f"{API}/client/investments/{young['id']}/schedule",
                                  headers=other_headers), 404, "NOT_FOUND")
    assert_error(await client.post(f"{API}/client/investments/{young['id']}/redemption",
                                   headers=other_headers), 404, "NOT_FOUND")
    hold = await client.post(f"{API}/client/investments/{young['id']}/redemption",
                             headers=owner_headers)
    assert_error(hold, 409, "MINIMUM_HOLD")
    assert hold.json()["error"]["details"]["maturity_date"] == young["maturity_date"]
    due = await client.post(f"{API}/client/investments/{old['id']}/redemption",
                            headers=owner_headers)
    assert due.status_code == 200 and due.json()["kind"] == "principal"
    assert due.json()["status"] == "due" and due.json()["amount"] == "20000.00"
    own = (await client.get(f"{API}/client/ledger", headers=owner_headers)).json()
    assert own["total"] == 2
    assert (await client.get(f"{API}/client/ledger", headers=other_headers)).json()["total"] == 0
    assert (await client.get(f"{API}/admin/ledger", headers=owner_headers)).status_code == 403


async def test_obligations_list_overdue_items_first_then_months(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    user, _ = await signed_in_user(app, client)
    await invest(client, admin, str(user.id), deposit=date(2025, 1, 31))
    await invest(client, admin, str(user.id), fund="BALANCE", amount="50000.00",
                 deposit=TODAY - timedelta(days=3))
    body = (await client.get(f"{API}/admin/obligations", headers=admin)).json()
    assert len(body["overdue"]) == 13
    assert body["overdue"][0]["due_date"] == "2025-04-30"
    core = [m for m in body["months"] if m["fund_code"] == "CORE"]
    assert sum(Decimal(m["due"]) for m in core) == Decimal("118000.00")
    balance = [m for m in body["months"] if m["fund_code"] == "BALANCE"]
    assert sum(Decimal(m["scheduled"]) for m in balance) == Decimal("65000.00")
    only = (await client.get(f"{API}/admin/obligations", headers=admin,
                             params={"fund_code": "BALANCE"})).json()
    assert only["overdue"] == [] and {m["fund_code"] for m in only["months"]} == {"BALANCE"}
    assert_error(await client.get(f"{API}/admin/obligations", headers=admin,
                                  params={"from": "2026-02-01", "to": "2026-01-01"}),
                 422, "INVALID_PERIOD")


async def test_the_lifecycle_pass_is_idempotent_and_catches_up_after_a_gap(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    clock = install_clock(app)
    user, _ = await signed_in_user(app, client)
    start = clock().date()
    investment = await invest(client, admin, str(user.id), deposit=start - timedelta(days=55))
    contracts = services(app).contracts
    first = await contracts.lifecycle(actor=Actor.system())
    second = await contracts.lifecycle(actor=Actor.system())
    assert first.changes == 0 and second.changes == 0
    # Forty days without a pass: incubation ended and the first payout fell due meanwhile.
    clock.advance(days=40)
    caught_up = await contracts.lifecycle(actor=Actor.system())
    assert dict(caught_up.investments_moved) == {"active": 1}
    assert caught_up.items_due == 1
    assert (await contracts.lifecycle(actor=Actor.system())).changes == 0
    stored = await services(app).investments.get(investment["id"])
    assert stored.status.value == "active"
    fresh = await admin_headers(client)  # the first sign-in's token expired during the gap
    items = (await schedule(client, fresh, investment["id"]))["items"]
    assert [i["status"] for i in items[:2]] == ["due", "scheduled"]
    audit = services(app).repos.audit_log
    assert (await audit.search(action="investment.status.active")).total == 1
    assert (await audit.search(action="schedule_item.due")).total == 1
