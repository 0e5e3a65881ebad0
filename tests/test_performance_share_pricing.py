"""The lifecycle pass prices each due performance share (UNLIMITED) from the investment's unit
valuation: 50 % of the gain above the high-water mark, paid by the admin as any other item; no
gain cancels the item; no final valuation leaves it unpriced."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.models.mt5_accounts import Mt5Account
from backend.models.mt5_deals import DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint, utc_day
from backend.services import Services
from backend.settings import Settings
from tests.api_support import API, admin_headers, api_settings, assert_error, services
from tests.factories import ADMIN, investment_create, mt5_create
from tests.sync_factories import approved_client

PRINCIPAL = Decimal("250000.00")
DEPOSITED = date(2025, 1, 15)
TODAY = datetime.now(UTC).date()


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await admin_headers(client)


def at(day: date, hour: int = 21) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


async def invested(app_services: Services, login: int) -> Mt5Account:
    """An UNLIMITED investment with its MT5 account, created and linked in the same step."""
    client = await approved_client(app_services)
    await app_services.investments.create(
        investment_create(client, fund_code="UNLIMITED", principal_amount=PRINCIPAL,
                          deposit_date=DEPOSITED), actor=ADMIN,
        mt5_account=mt5_create(client, mt5_login=login, server="FidusSim-Server",
                               fund_code="UNLIMITED"))
    account = await app_services.mt5.repo.by_login(login)
    assert account is not None and account.id is not None
    return account


async def unlimited_on_account(app: FastAPI, login: int) -> tuple[Services, Mt5Account]:
    """An UNLIMITED investment whose deposit the account received on its deposit date."""
    app_services = services(app)
    account = await invested(app_services, login)
    await app_services.repos.deals.upsert_batch([Mt5Deal(
        mt5_account_id=account.id, mt5_login=login, ticket=1, time=at(DEPOSITED, 10),
        deal_type=DealType.BALANCE, volume=Decimal(0), price=Decimal(0), profit=PRINCIPAL,
        commission=Decimal(0), swap=Decimal(0), fee=Decimal(0), currency="USD",
        comment="Deposit", synced_at=at(DEPOSITED))])
    return app_services, account


async def close(app_services: Services, account: Mt5Account, day: date, equity: str) -> None:
    assert account.id is not None
    assert await app_services.repos.equity.append_daily_point(Mt5EquityPoint(
        mt5_account_id=account.id, mt5_login=account.mt5_login, day=utc_day(at(day)),
        balance=Decimal(equity), equity=Decimal(equity), currency="USD", recorded_at=at(day)))


async def items_of(client: httpx.AsyncClient, admin: dict[str, str],
                   investment_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/admin/investments/{investment_id}/schedule",
                                headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def investment_of(app_services: Services, account: Mt5Account) -> tuple[str, date]:
    """The investment's id and its first performance-share date."""
    assert account.investment_id is not None
    items = await app_services.repos.schedule.of_investment(account.investment_id)
    first = items[0]
    assert first.kind == "performance_share" and first.amount is None
    return str(account.investment_id), first.due_date.astimezone(UTC).date()


async def first_item_id(app_services: Services, account: Mt5Account) -> str:
    assert account.investment_id is not None
    return str((await app_services.repos.schedule.item(account.investment_id, 1)).id)


async def test_a_gain_is_priced_at_half_to_the_cent_and_paid_as_any_item(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    app_services, account = await unlimited_on_account(app, 81000001)
    investment_id, due = await investment_of(app_services, account)
    # 250000 units bought at 1 (no close before the deposit).
    await close(app_services, account, DEPOSITED, "250000.00")
    await close(app_services, account, due - timedelta(days=1), "270003.08")
    await close(app_services, account, due, "270500.00")

    report = await app_services.contracts.lifecycle()
    assert (report.shares_priced, report.shares_without_gain) == (1, 0)
    assert report.shares_unpriced == 3, "later dates: the account is not synced past them"
    first = (await items_of(client, admin, investment_id))[0]
    # units 250000, value per unit 270003.08 / 250000 = 1.08001232: gain 20003.08, half 10001.54
    assert (first["status"], first["amount"]) == ("due", "10001.54")
    priced = await app_services.repos.audit_log.search(
        entity_type="schedule_item", action="schedule_item.priced")
    assert [r.entity_id for r in priced.items] == [await first_item_id(app_services, account)]

    paid = await client.post(
        f"{API}/admin/investments/{investment_id}/schedule/1/payout",
        headers=admin | {"Idempotency-Key": "pshare-0001"},
        json={"paid_on": TODAY.isoformat(), "reference": "WIRE-PS-1"})
    assert paid.status_code == 201, paid.text
    entries = (await client.get(f"{API}/admin/ledger", headers=admin,
                                params={"investment_id": investment_id})).json()["items"]
    assert [(e["kind"], e["amount"]) for e in entries if e["kind"] != "subscription"] == [
        ("performance_share_paid", "10001.54")]

    again = await app_services.contracts.lifecycle()
    assert again.changes == 0 and again.shares_unpriced == 3
    first = (await items_of(client, admin, investment_id))[0]
    assert (first["status"], first["amount"]) == ("paid", "10001.54")


async def test_no_gain_above_the_mark_cancels_the_item_and_nothing_can_be_paid(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    app_services, account = await unlimited_on_account(app, 81000002)
    investment_id, due = await investment_of(app_services, account)
    await close(app_services, account, DEPOSITED, "250000.00")
    await close(app_services, account, due - timedelta(days=1), "240000.00")
    await close(app_services, account, due, "260000.00")

    report = await app_services.contracts.lifecycle()
    assert (report.shares_priced, report.shares_without_gain) == (0, 1)
    first = (await items_of(client, admin, investment_id))[0]
    assert (first["status"], first["amount"]) == ("cancelled", "0.00")
    no_gain = await app_services.repos.audit_log.search(
        entity_type="schedule_item", action="schedule_item.no_gain")
    assert [(r.entity_id, r.reason) for r in no_gain.items] == [
        (await first_item_id(app_services, account), "no gain above the high-water mark")]
    assert_error(await client.post(
        f"{API}/admin/investments/{investment_id}/schedule/1/payout",
        headers=admin | {"Idempotency-Key": "pshare-0002"},
        json={"paid_on": TODAY.isoformat(), "reference": "WIRE-PS-2"}), 409, "ITEM_CANCELLED")
    assert (await app_services.contracts.lifecycle()).changes == 0


async def test_an_investment_awaiting_its_deposit_stays_unpriced(
        app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    app_services = services(app)
    account = await invested(app_services, 81000003)
    investment_id, due = await investment_of(app_services, account)
    await close(app_services, account, due, "250000.00")

    report = await app_services.contracts.lifecycle()
    assert (report.shares_priced, report.shares_without_gain, report.shares_unpriced) == (0, 0, 4)
    assert [i["amount"] for i in await items_of(client, admin, investment_id)][:4] == [None] * 4
