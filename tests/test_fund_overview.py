"""Funds against what they owe: the overview on the synced demo, `/health` degraded by an
overdue payout or a coverage below 1 (and saying which), the stored MT5 history through the
API, and round trips that do not grow with the number of investments."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from backend.funds import default_catalog
from backend.models.investments import INVESTED_STATUSES, Investment, InvestmentStatus
from backend.models.ledger_entries import Direction, LedgerEntry, LedgerEntryKind
from backend.models.schedule_items import ScheduleItem, ScheduleItemStatus
from backend.money.calendar import add_months
from backend.money.schedule import build_schedule
from backend.ops.seed import DEMO_PASSWORD
from backend.services import Services
from backend.services.fund_overview import funds_health_check
from backend.services.statements import parse_period
from backend.settings import Settings
from tests.api_support import API, assert_error, bearer, login
from tests.demo_support import seeded_and_synced
from tests.factories import ADMIN, investment_create
from tests.support import CommandRecorder
from tests.sync_factories import approved_client, invested_mapping, mapping

Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def services(synced_db: Db, settings: Settings) -> Services:
    return Services(synced_db, settings)


@pytest.fixture
async def demo(app: FastAPI, tmp_path: Path) -> Services:
    return await seeded_and_synced(app, tmp_path)


async def test_the_overview_adds_up_what_the_demo_funds_hold_and_owe(
        demo: Services, client: httpx.AsyncClient) -> None:
    today = demo.valuation.today()
    admin = bearer(await login(client, "admin@fidus.example", DEMO_PASSWORD))
    answer = await client.get(f"{API}/admin/funds/overview", headers=admin)
    assert answer.status_code == 200, answer.text
    funds = {row["fund_code"]: row for row in answer.json()}
    assert set(default_catalog().codes()) <= set(funds)

    investments = await demo.repos.investments.in_funds()
    accounts = await demo.repos.mt5_accounts.in_funds()
    contractual: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for user in await demo.statements.clients():
        lines, _ = await demo.statements.performance(user.id)
        for line in lines:
            assert line.investment is not None
            contractual[line.investment.fund_code] += line.contractual_value
    overdue = await demo.repos.schedule.overdue(
        before=datetime.combine(today, datetime.min.time(), tzinfo=UTC))
    open_items = await demo.repos.schedule.open_items()
    for code, row in funds.items():
        mine = [i for i in investments if i.fund_code == code]
        assert Decimal(row["assets_under_management"]) == sum(
            (i.principal_amount for i in mine if i.status in INVESTED_STATUSES), Decimal(0))
        equity = sum((max(a.equity, Decimal(0)) for a in accounts
                      if a.fund_code == code and a.equity is not None), Decimal(0))
        assert Decimal(row["actual_equity"]) == equity
        assert Decimal(row["obligations"]) == contractual[code]
        if contractual[code] > 0 and row["accounts_synced"]:
            assert Decimal(row["coverage_ratio"]) == (equity / contractual[code]).quantize(
                Decimal("0.0001"))
        # Every live investment's units, as the sync stored them, are the units outstanding.
        assert Decimal(row["units_outstanding"]) == sum(
            (i.units or 0 for i in mine if i.status not in (InvestmentStatus.CLOSED,
                                                             InvestmentStatus.PENDING)),
            Decimal(0))
        assert row["overdue_items"] == sum(1 for i in overdue if i.fund_code == code)
        horizon = add_months(today, 12)
        expected: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for item in open_items:
            if item.fund_code == code and today < item.due_date.date() <= horizon:
                expected[f"{item.due_date:%Y-%m}"] += item.amount or 0
        assert {m["month"]: Decimal(m["amount"]) for m in row["next_payouts"]} == expected
    core = funds["CORE"]
    assert core["accounts"] and core["time_weighted_return"] is not None
    assert Decimal(core["value_per_unit"]) > 0

    # The demo's payouts due in the last 45 days are unpaid: /health says so, and which.
    health = (await client.get("/health")).json()
    assert health["status"] == "degraded"
    [reason] = [r for r in health["reasons"] if r.startswith("fund CORE:") and "overdue" in r]
    assert overdue[0].investment_ref in " ".join(health["reasons"])
    assert f"{funds['CORE']['overdue_items']} payout(s) overdue" in reason


async def test_health_names_a_fund_whose_equity_covers_less_than_it_owes(
        synced_db: Db, settings: Settings, services: Services) -> None:
    check = funds_health_check(settings)
    client = await approved_client(services)
    today = datetime.now(UTC).date()
    account = await invested_mapping(services, client, 61_000_901, Decimal("10000.00"),
                                     deposit_date=today - timedelta(days=5))
    assert await check(synced_db) == [], "never synced: no coverage to judge"

    async def synced_with(equity: str) -> None:
        assert account.id is not None
        await services.repos.mt5_accounts.record_sync_success(
            account.id, balance=Decimal(equity), equity=Decimal(equity), margin=Decimal(0),
            free_margin=Decimal(equity), margin_level=Decimal(0), profit=Decimal(0),
            leverage=100, snapshot_at=datetime.now(UTC), synced_at=datetime.now(UTC),
            deals_synced_to=datetime.now(UTC))

    await synced_with("9000.00")
    # Incubating for five days: nothing accrued yet, the principal is owed.
    assert await check(synced_db) == [
        "fund CORE: coverage 0.9000 (MT5 equity 9000.00 against obligations 10000.00 USD)"]
    await synced_with("10000.00")
    assert await check(synced_db) == []

    late = (await services.investments.create(
        investment_create(client, principal_amount=Decimal("20000.00"),
                          deposit_date=add_months(today, -3) - timedelta(days=2)),
        actor=ADMIN)).investment
    overdue, coverage = await check(synced_db)
    assert overdue.startswith("fund CORE: 1 payout(s) overdue, 300.00 USD in all: "
                              f"{late.investment_id} #1 due ")
    assert coverage.startswith("fund CORE: coverage 0.3"), "the late one is owed too"


async def test_the_stored_mt5_history_is_paged_newest_first(
        demo: Services, client: httpx.AsyncClient) -> None:
    admin = bearer(await login(client, "admin@fidus.example", DEMO_PASSWORD))
    [account] = [a for a in await demo.repos.mt5_accounts.in_funds(["CORE"])
                 if a.mt5_login == 80000001]
    deals = await client.get(f"{API}/admin/mt5/accounts/{account.id}/deals", headers=admin,
                             params={"page_size": 5})
    assert deals.status_code == 200, deals.text
    body = deals.json()
    assert body["total"] > 5 and len(body["items"]) == 5
    times = [row["time"] for row in body["items"]]
    assert times == sorted(times, reverse=True)
    second = (await client.get(f"{API}/admin/mt5/accounts/{account.id}/deals", headers=admin,
                               params={"page_size": 5, "page": 2})).json()
    assert not {r["ticket"] for r in second["items"]} & {r["ticket"] for r in body["items"]}
    equity = (await client.get(f"{API}/admin/mt5/accounts/{account.id}/equity",
                               headers=admin)).json()
    assert equity["total"] == 1
    assert equity["items"][0]["equity"] == format(account.equity, "f")
    for path in ("equity", "deals"):
        assert_error(await client.get(f"{API}/admin/mt5/accounts/{'0' * 24}/{path}",
                                      headers=admin), 404)
    client1 = bearer(await login(client, "client1@fidus.example", DEMO_PASSWORD))
    assert_error(await client.get(f"{API}/admin/mt5/accounts/{account.id}/equity",
                                  headers=client1), 403)


# --- round trips ---------------------------------------------------------------------------


async def add_investments(db: Db, services: Services, client_id: ObjectId,
                          account_id: ObjectId, *, first: int, count: int) -> None:
    """`count` matured BALANCE investments on one account, with their schedules and
    subscriptions, written in three bulk inserts."""
    catalog = default_catalog()
    now = datetime.now(UTC)
    investments, items, entries = [], [], []
    for k in range(first, first + count):
        deposit = date(2024, 1, 1) + timedelta(days=k)
        principal = Decimal(50_000 + k)
        plan = build_schedule(catalog.terms_on("BALANCE", deposit), principal=principal,
                              deposit_date=deposit)
        at = datetime.combine(deposit, datetime.min.time(), tzinfo=UTC)
        investment = Investment(
            id=ObjectId(), investment_id=f"INV-RT-{k:06d}", client_id=client_id,
            fund_code="BALANCE", principal_amount=principal, currency="USD", deposit_date=at,
            terms_version=1, status=InvestmentStatus.MATURED, current_value=principal,
            mt5_account_id=account_id, created_by=ObjectId(), created_at=now, updated_at=now,
            version=1)
        investments.append(investment.to_document())
        for planned in plan.items:
            due = datetime.combine(planned.due_date, datetime.min.time(), tzinfo=UTC)
            items.append(ScheduleItem(
                id=ObjectId(), investment_id=investment.id, investment_ref=investment.investment_id,
                client_id=client_id, fund_code="BALANCE", terms_version=1, number=planned.number,
                kind=planned.kind, due_date=due, amount=planned.amount, currency="USD",
                status=ScheduleItemStatus.DUE, created_at=now, updated_at=now,
                version=1).to_document())
        entries.append(LedgerEntry(
            id=ObjectId(), kind=LedgerEntryKind.SUBSCRIPTION, direction=Direction.IN,
            client_id=client_id, investment_id=investment.id,
            investment_ref=investment.investment_id, fund_code="BALANCE", amount=principal,
            currency="USD", effective_date=at, booked_at=now, actor_type="system",
            idempotency_key=f"subscription:{investment.id}").to_document())
    await db["investments"].insert_many(investments)
    await db["schedule_items"].insert_many(items)
    await db["ledger_entries"].insert_many(entries)


async def test_round_trips_per_statement_and_overview_do_not_grow_with_investments(
        synced_db: Db, settings: Settings, services: Services,
        command_recorder: CommandRecorder) -> None:
    client = await approved_client(services)
    account = await mapping(services, client, 61_000_902, fund_code="BALANCE")
    assert client.id is not None and account.id is not None
    today = services.valuation.today()
    period = parse_period(period=str(today.year), today=today)
    counts: dict[int, dict[str, int]] = {}
    for total, adding in ((10, 10), (100, 90)):
        await add_investments(synced_db, services, client.id, account.id,
                              first=total - adding, count=adding)
        assert len(await services.repos.investments.of_client(client.id)) == total
        counts[total] = {}
        for name, call in (("statement", lambda: services.statements.statement(client.id,
                                                                              period)),
                           ("performance", lambda: services.statements.performance(client.id)),
                           ("overview", services.fund_overview.overview)):
            command_recorder.reset()
            result = await call()
            counts[total][name] = command_recorder.count()
            assert result
    assert counts[10] == counts[100], counts
    assert counts[100]["statement"] <= 10, counts
