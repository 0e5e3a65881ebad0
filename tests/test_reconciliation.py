"""Reconciliation of MT5 balance deals against investments: the service, the CLI and the
admin route."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from bson import Decimal128, ObjectId
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.investments import InvestmentStatus
from backend.services import Services
from backend.services.reconciliation import BreakKind
from backend.settings import Settings
from backend.sync.job import SyncJob
from backend.sync.reconcile_cli import main as reconcile_main
from mt5_bridge_service import SimulatedTerminal
from tests.api_support import API, admin_headers, api_settings, signed_in_user
from tests.api_support import services as app_services
from tests.factories import ADMIN
from tests.support import InspectableServices
from tests.sync_factories import (
    approved_client,
    bridge_client,
    bridge_transport,
    invested_mapping,
    simulator,
)

LOGIN = 62_000_111
Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


def deposits(sim: SimulatedTerminal, login: int) -> list[Decimal]:
    return [Decimal(repr(d.profit)).quantize(Decimal("0.01")) for d in sim.raw_deals(login)
            if d.type == 2 and d.profit > 0]


async def reconciled_account(services: Services, sim: SimulatedTerminal, login: int) -> Any:
    """A client whose investment records exactly the simulator's initial deposit."""
    principal = deposits(sim, login)[0]
    client = await approved_client(services)
    return await invested_mapping(services, client, login, principal)


async def sync(db: Db, settings: Settings, sim: SimulatedTerminal) -> None:
    async with bridge_client(bridge_transport(sim)) as client:
        report = await SyncJob(db, settings, client).run_once()
    assert not report.failed, report.failed


def find_login_without_withdrawal(sim: SimulatedTerminal, start: int) -> int:
    login = start
    while len([d for d in sim.raw_deals(login) if d.type == 2]) != 1:
        login += 1
    return login


async def test_a_deposit_no_investment_records_is_a_break(
    synced_db: Db, settings: Settings
) -> None:
    services = InspectableServices(synced_db, settings)
    sim = simulator()
    login = find_login_without_withdrawal(sim, LOGIN)
    account = await reconciled_account(services, sim, login)
    await sync(synced_db, settings, sim)
    recon = InspectableServices(synced_db, settings).reconciliation
    assert await recon.breaks() == []

    extra = sim.add_deal(login, profit="7500.00")
    await sync(synced_db, settings, sim)
    found = await recon.breaks()

    assert len(found) == 1
    only = found[0]
    assert only.kind is BreakKind.UNRECORDED_DEPOSIT
    assert only.amount == Decimal("7500.00") and only.currency == "USD"
    assert only.deal_tickets == [extra.ticket]
    assert only.account_id == account.account_id and only.mt5_login == login
    assert only.client_id == str(account.client_id) and only.fund_code == "CORE"
    assert only.client_name and only.client_name.startswith("Ada ")


async def test_an_investment_without_its_deposit_and_an_amount_off_by_a_cent_are_breaks(
    synced_db: Db, settings: Settings
) -> None:
    services = InspectableServices(synced_db, settings)
    sim = simulator()
    login = find_login_without_withdrawal(sim, LOGIN + 1000)
    deposit = deposits(sim, login)[0]
    client = await approved_client(services)
    account = await invested_mapping(services, client, login, deposit + Decimal("0.01"))
    await sync(synced_db, settings, sim)

    recon = InspectableServices(synced_db, settings).reconciliation
    found = {b.kind: b for b in await recon.breaks()}
    assert set(found) == {BreakKind.MISSING_DEPOSIT, BreakKind.UNRECORDED_DEPOSIT}
    assert found[BreakKind.MISSING_DEPOSIT].amount == deposit + Decimal("0.01")
    assert found[BreakKind.MISSING_DEPOSIT].account_id == account.account_id
    assert found[BreakKind.UNRECORDED_DEPOSIT].amount == deposit


async def test_cancelled_investments_are_not_expected_in_mt5(
    synced_db: Db, settings: Settings
) -> None:
    services = InspectableServices(synced_db, settings)
    sim = simulator()
    login = find_login_without_withdrawal(sim, LOGIN + 2000)
    account = await reconciled_account(services, sim, login)
    await sync(synced_db, settings, sim)
    investment = await services.investments.create(
        _second(account), actor=ADMIN)
    kinds = [b.kind for b in await InspectableServices(synced_db, settings).reconciliation.breaks()]
    assert kinds == [BreakKind.MISSING_DEPOSIT]
    # Investments are created active; a legacy import can hold cancelled ones.
    await synced_db["investments"].update_one({"_id": investment.investment.id},
                                              {"$set": {"status": InvestmentStatus.CANCELLED}})
    assert await InspectableServices(synced_db, settings).reconciliation.breaks() == []


def _second(account: Any) -> Any:
    from datetime import date

    from backend.models.investments import InvestmentCreate
    return InvestmentCreate(client_id=account.client_id, fund_code="CORE",
                            principal_amount=Decimal("12345.00"), currency="USD",
                            deposit_date=date(2026, 1, 5))


async def test_make_reconcile_exit_codes_and_json(synced_db: Db, settings: Settings) -> None:
    services = InspectableServices(synced_db, settings)
    sim = simulator()
    login = find_login_without_withdrawal(sim, LOGIN + 3000)
    await reconciled_account(services, sim, login)
    await sync(synced_db, settings, sim)
    assert await asyncio.to_thread(reconcile_main, ["--json"], settings=settings) == 0

    sim.add_deal(login, profit="999.99")
    await sync(synced_db, settings, sim)
    code, out = await _run_json(settings)
    assert code == 1
    assert out["total"] == 1 and out["breaks"][0]["amount"] == "999.99"
    assert out["breaks"][0]["kind"] == "unrecorded_deposit"

    broken = api_settings("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
                          settings.database_name, mongodb_connect_attempts=1,
                          mongodb_server_selection_timeout_ms=200)
    assert await asyncio.to_thread(reconcile_main, ["--json"], settings=broken) == 2


async def _run_json(settings: Settings) -> tuple[int, dict[str, Any]]:
    import contextlib
    import io

    buffer = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(buffer):
            return reconcile_main(["--json"], settings=settings)

    code = await asyncio.to_thread(run)
    return code, json.loads(buffer.getvalue())


async def test_the_admin_route_lists_breaks_for_admins_only(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    assert f"{API}/admin/reconciliation/breaks" in app.openapi()["paths"]
    services = app_services(app)
    sim = simulator()
    login = find_login_without_withdrawal(sim, LOGIN + 4000)
    await reconciled_account(services, sim, login)
    sim.add_deal(login, profit="250.00")
    await sync(app.state.connection.database, settings, sim)

    response = await client.get(f"{API}/admin/reconciliation/breaks",
                                headers=await admin_headers(client))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    assert body["breaks"][0]["amount"] == "250.00"
    assert body["breaks"][0]["kind"] == "unrecorded_deposit"

    _, client_headers = await signed_in_user(app, client)
    refused = await client.get(f"{API}/admin/reconciliation/breaks", headers=client_headers)
    assert refused.status_code == 403
    assert (await client.get(f"{API}/admin/reconciliation/breaks")).status_code == 401


async def _record(db: Db, *, client: ObjectId, login: int, ticket: int, amount: str,
                  active: bool = True, fund: str = "CORE", n: int = 1) -> dict[str, Any]:
    """An MT5 account with one deposit deal and the investment that records it (no sync)."""
    day = datetime(2025, 1, n, tzinfo=UTC)
    account = {"_id": ObjectId(), "account_id": f"MT5-R{login}-{n}", "client_id": client,
               "fund_code": fund, "mt5_login": login, "server": f"Broker{n}-Live",
               "currency": "USD", "is_active": active, **_STORED_ACCOUNT}
    await db["mt5_accounts"].insert_one(account)
    await db["mt5_deals"].insert_one(balance_deal(account, ticket=ticket, time=day,
                                                  amount=amount))
    await db["investments"].insert_one({
        "investment_id": f"INV-R{login}-{n}", "client_id": client, "fund_code": fund,
        "principal_amount": Decimal128(amount), "current_value": Decimal128(amount),
        "currency": "USD", "deposit_date": day, "status": "active",
        "created_by": ObjectId(), "created_at": day, "updated_at": day, "version": 1})
    return account


_STORED_ACCOUNT = {"broker_code": "MULTIBANK", "investor_password_encrypted": "sealed-password-x",
                   "sync_status": "never_synced", "version": 1,
                   "created_at": datetime(2025, 1, 1, tzinfo=UTC),
                   "updated_at": datetime(2025, 1, 1, tzinfo=UTC)}


def balance_deal(account: dict[str, Any], *, ticket: int, time: datetime,
                 amount: str) -> dict[str, Any]:
    zero = Decimal128("0")
    return {"mt5_account_id": account["_id"], "mt5_login": account["mt5_login"],
            "ticket": ticket, "deal_type": "balance", "time": time,
            "profit": Decimal128(amount), "currency": "USD", "volume": zero, "price": zero,
            "commission": zero, "swap": zero, "fee": zero, "synced_at": time}


async def test_a_login_re_mapped_to_another_client_keeps_each_deposit_with_its_own_mapping(
    db: Db, settings: Settings,
) -> None:
    first, second = ObjectId(), ObjectId()
    await db["users"].insert_many([{"_id": first, "first_name": "Ann", "last_name": "Old"},
                                   {"_id": second, "first_name": "Ben", "last_name": "New"}])
    await _record(db, client=first, login=7_000_001, ticket=11, amount="5000.00",
                  active=False, n=1)
    await _record(db, client=second, login=7_000_001, ticket=12, amount="8000.00", n=2)
    assert await InspectableServices(db, settings).reconciliation.breaks() == []

    old = await db["mt5_accounts"].find_one({"client_id": first})
    await db["mt5_deals"].insert_one(balance_deal(
        old, ticket=13, time=datetime(2025, 2, 1, tzinfo=UTC), amount="100.00"))
    [found] = await InspectableServices(db, settings).reconciliation.breaks()
    assert found.kind is BreakKind.UNRECORDED_DEPOSIT and found.deal_tickets == [13]
    assert found.client_name == "Ann Old" and found.account_id == "MT5-R7000001-1"


async def test_equal_tickets_on_two_accounts_of_one_client_and_fund_are_two_deposits(
    db: Db, settings: Settings,
) -> None:
    client = ObjectId()
    await db["users"].insert_one({"_id": client, "first_name": "Cy", "last_name": "Two"})
    for n in (1, 2):
        await _record(db, client=client, login=7_000_002, ticket=21, amount="5000.00", n=n)
    assert await InspectableServices(db, settings).reconciliation.breaks() == []
