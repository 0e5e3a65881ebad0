"""The repositories of MT5 deal and equity history, applied migrations and the dedupe
quarantine, and the sync's queries on accounts and investments, against the real validators
and indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.errors import DuplicateEntity
from backend.models.dedupe_quarantine import QuarantinedDocument, QuarantineSource
from backend.models.investments import InvestmentStatus
from backend.models.migrations import MigrationRecord
from backend.models.mt5_deals import DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint, utc_day
from backend.repositories import mt5_deals
from backend.repositories.dedupe_quarantine import DedupeQuarantineRepository
from backend.repositories.migrations import MigrationRepository
from backend.repositories.mt5_deals import Mt5DealRepository
from backend.repositories.mt5_equity_history import Mt5EquityHistoryRepository
from backend.services import Services
from backend.settings import Settings
from tests import ops_factories as f
from tests.factories import ADMIN, investment_create
from tests.support import CommandRecorder
from tests.sync_factories import approved_client, invested_mapping, mapping

Db = AsyncDatabase[dict[str, Any]]
ACCOUNT, OTHER_ACCOUNT = ObjectId(), ObjectId()
LOGIN = 61_000_101
CREATOR = ObjectId()


def deal(ticket: int, *, account: ObjectId = ACCOUNT, deal_type: DealType = DealType.BALANCE,
         profit: str = "1000.00", minutes: int = 0) -> Mt5Deal:
    return Mt5Deal(
        mt5_account_id=account, mt5_login=LOGIN, ticket=ticket, time=f.T0 + timedelta(
            minutes=minutes), deal_type=deal_type, volume=Decimal("0"), price=Decimal("0"),
        profit=Decimal(profit), commission=Decimal("0"), swap=Decimal("0"), fee=Decimal("0"),
        currency="USD", comment="Deposit", synced_at=f.T0)


def point(at: datetime, equity: str) -> Mt5EquityPoint:
    return Mt5EquityPoint(mt5_account_id=ACCOUNT, mt5_login=LOGIN, day=utc_day(at),
                          balance=Decimal("10000.00"), equity=Decimal(equity), currency="USD",
                          recorded_at=at)


# --- mt5_deals -------------------------------------------------------------------------


async def test_deals_are_stored_once_and_a_replay_never_changes_them(synced_db: Db) -> None:
    deals = Mt5DealRepository(synced_db)
    assert await deals.upsert_batch([deal(1), deal(2, profit="-250.00")]) == 2

    replayed = deal(1, profit="999999.00")
    assert await deals.upsert_batch([replayed, deal(3), deal(1, account=OTHER_ACCOUNT)]) == 2

    stored = {(d["mt5_account_id"], d["ticket"]): d async for d in synced_db["mt5_deals"].find()}
    assert len(stored) == 4
    first = stored[(ACCOUNT, 1)]
    assert first["profit"] == Decimal128("1000.00"), "the replay left the stored deal alone"
    assert stored[(ACCOUNT, 2)]["profit"] == Decimal128("-250.00")
    assert first["deal_type"] == "balance" and first["time"] == f.T0


async def test_deals_go_in_one_bulk_write_per_batch(
        synced_db: Db, command_recorder: CommandRecorder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mt5_deals, "BATCH", 2)
    command_recorder.reset()

    assert await Mt5DealRepository(synced_db).upsert_batch([deal(t) for t in range(1, 6)]) == 5

    assert command_recorder.names() == ["update"] * 3


async def test_balance_deals_are_the_accounts_deposits_and_withdrawals_oldest_first(
        synced_db: Db) -> None:
    deals = Mt5DealRepository(synced_db)
    await deals.upsert_batch([
        deal(10, minutes=5), deal(11, profit="-300.00", minutes=1),
        deal(12, deal_type=DealType.BUY, minutes=2), deal(13, account=OTHER_ACCOUNT),
    ])

    found = await deals.balance_deals([ACCOUNT])

    assert [(d.ticket, d.profit) for d in found] == [(11, Decimal("-300.00")),
                                                     (10, Decimal("1000.00"))]
    assert await deals.balance_deals([]) == []


# --- mt5_equity_history ---------------------------------------------------------------


async def test_the_days_latest_equity_point_wins_and_an_earlier_one_is_refused(
        synced_db: Db) -> None:
    equity = Mt5EquityHistoryRepository(synced_db)
    morning = datetime(2025, 3, 3, 8, tzinfo=UTC)

    assert await equity.append_daily_point(point(morning, "10100.00"))
    assert await equity.append_daily_point(point(morning + timedelta(hours=8), "10250.00"))
    assert not await equity.append_daily_point(point(morning + timedelta(hours=1), "1.00"))
    assert await equity.append_daily_point(point(morning - timedelta(days=1), "9900.00"))

    stored = [p async for p in synced_db["mt5_equity_history"].find({}, sort=[("day", 1)])]
    assert [(p["day"], p["equity"]) for p in stored] == [
        (datetime(2025, 3, 2, tzinfo=UTC), Decimal128("9900.00")),
        (datetime(2025, 3, 3, tzinfo=UTC), Decimal128("10250.00")),
    ]
    assert stored[1]["recorded_at"] == morning + timedelta(hours=8)


# --- migrations -------------------------------------------------------------------------


def migration(version: str, name: str) -> MigrationRecord:
    return MigrationRecord(version=version, name=name, checksum="ab" * 32, applied_at=f.T0,
                           duration_ms=12, applied_by="host:1:abc")


async def test_applied_migrations_are_recorded_once_in_version_order(synced_db: Db) -> None:
    records = MigrationRepository(synced_db)
    await records.record_applied(migration("20261101000000", "second"))
    await records.record_applied(migration("20261001000000", "first"))

    with pytest.raises(DuplicateEntity):
        await records.record_applied(migration("20261001000000", "first_again"))

    assert [(r.version, r.name) for r in await records.applied()] == [
        ("20261001000000", "first"), ("20261101000000", "second")]
    assert await records.record_reverted("20261101000000")
    assert not await records.record_reverted("20261101000000")
    assert [r.version for r in await records.applied()] == ["20261001000000"]


# --- dedupe_quarantine ------------------------------------------------------------------


def quarantined(run_id: str, document: dict[str, Any], kept: ObjectId) -> QuarantinedDocument:
    return QuarantinedDocument(
        run_id=run_id, source_collection=QuarantineSource.INVESTMENTS,
        original_id=document["_id"], kept_id=kept, document=document,
        reason="duplicate investment", quarantined_at=f.T0)


async def test_quarantine_keeps_each_document_exactly_and_restores_by_run(
        synced_db: Db) -> None:
    later = [f.T0 + timedelta(days=3)]
    quarantine = DedupeQuarantineRepository(synced_db, clock=lambda: later[0])
    client, kept = ObjectId(), ObjectId()
    legacy = f.investment(client, CREATOR, n=1, amount="25000.0",
                          notes={"history": [Decimal128("1.10"), Int64(7)]})
    other = f.investment(client, CREATOR, n=2)

    await quarantine.quarantine([quarantined("run-1", legacy, kept),
                                 quarantined("run-1", other, kept)])
    await quarantine.quarantine([quarantined("run-2", legacy, kept)])

    raw = await synced_db["dedupe_quarantine"].find_one({"run_id": "run-1",
                                                         "original_id": legacy["_id"]})
    assert raw is not None and raw["document"] == legacy
    assert raw["document"]["principal_amount"] == Decimal128("25000.0")
    records = await quarantine.of_run("run-1")
    assert [r.original_id for r in records] == [legacy["_id"], other["_id"]]
    assert records[0].document == legacy
    assert await quarantine.awaiting_restore("run-1") == 2

    assert await quarantine.mark_restored(records[:1]) == 1
    assert await quarantine.awaiting_restore("run-1") == 1
    assert (await quarantine.of_run("run-1"))[0].restored_at == later[0]
    assert await quarantine.awaiting_restore("run-2") == 1

    assert await quarantine.withdraw("run-1", original_ids=[other["_id"]]) == 1
    assert [r.original_id for r in await quarantine.of_run("run-1")] == [legacy["_id"]]
    assert len(await quarantine.of_run("run-2")) == 1


async def test_a_run_never_quarantines_the_same_document_twice(synced_db: Db) -> None:
    quarantine = DedupeQuarantineRepository(synced_db)
    document = f.investment(ObjectId(), CREATOR, n=1)
    await quarantine.quarantine([quarantined("run-1", document, ObjectId())])

    with pytest.raises(DuplicateEntity):
        await quarantine.quarantine([quarantined("run-1", document, ObjectId())])
    assert await synced_db["dedupe_quarantine"].count_documents({}) == 1


# --- what the sync asks of mt5_accounts and investments ---------------------------------


async def test_a_sync_success_never_moves_the_mark_back_nor_touches_the_version(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    account = await mapping(services, await approved_client(services), LOGIN)
    accounts = services.mt5.repo
    assert account.id is not None
    snapshot: dict[str, Any] = {
        "balance": Decimal("10000.00"), "equity": Decimal("10250.50"),
        "margin": Decimal("0.00"), "free_margin": Decimal("10250.50"), "margin_level": None,
        "profit": Decimal("250.50"), "leverage": 100}
    mark = datetime(2025, 3, 3, 12, tzinfo=UTC)

    assert await accounts.record_sync_success(
        account.id, **snapshot, snapshot_at=mark, synced_at=mark, deals_synced_to=mark)
    stale = {**snapshot, "equity": Decimal("1.00")}
    assert not await accounts.record_sync_success(
        account.id, **stale, snapshot_at=mark, synced_at=mark,
        deals_synced_to=mark - timedelta(minutes=5))

    raw = await synced_db["mt5_accounts"].find_one({"_id": account.id})
    assert raw is not None
    assert raw["equity"] == Decimal128("10250.50") and raw["margin_level"] is None
    assert raw["sync_status"] == "ok" and raw["deals_synced_to"] == mark
    assert raw["version"] == account.version and raw["updated_at"] == account.updated_at

    await accounts.record_sync_failure(account.id, error="BRIDGE_UNREACHABLE: down",
                                       at=mark + timedelta(minutes=1))
    raw = await synced_db["mt5_accounts"].find_one({"_id": account.id})
    assert raw is not None and raw["sync_status"] == "failed"
    assert raw["equity"] == Decimal128("10250.50") and raw["deals_synced_to"] == mark


async def test_accounts_due_for_sync_are_the_active_ones_longest_unsynced_first(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await approved_client(services)
    synced = await mapping(services, client, LOGIN)
    never = await mapping(services, client, LOGIN + 1, fund_code="BALANCE")
    retired = await mapping(services, client, LOGIN + 2, fund_code="DYNAMIC")
    await synced_db["mt5_accounts"].update_one({"_id": retired.id},
                                               {"$set": {"is_active": False}})
    await services.mt5.repo.record_sync_failure(synced.id,  # type: ignore[arg-type]
                                                error="X: y", at=f.T0)

    due = await services.mt5.repo.due_for_sync()

    assert [a.account_id for a in due] == [never.account_id, synced.account_id]


async def test_the_live_investments_an_account_carries_include_its_first_and_top_ups(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await approved_client(services)
    account = await invested_mapping(services, client, LOGIN, Decimal("10000.00"),
                                     deposit_date=date(2026, 10, 1))
    assert account.id is not None and account.investment_id is not None
    top_up = await services.investments.create(
        investment_create(client, principal_amount=Decimal("15000.00")), actor=ADMIN)
    elsewhere = await services.investments.create(
        investment_create(await approved_client(services)), actor=ADMIN)
    investments = services.investments.repo
    await synced_db["investments"].update_one(
        {"_id": top_up.investment.id}, {"$set": {"mt5_account_id": account.id}})
    # The first investment names no account yet: the account's `investment_id` finds it.
    await synced_db["investments"].update_one(
        {"_id": account.investment_id}, {"$set": {"mt5_account_id": None}})

    carried = await investments.live_on_account(account.id,
                                                first_investment_id=account.investment_id)
    assert [i.id for i in carried] == [account.investment_id, top_up.investment.id]
    assert elsewhere.investment.id not in [i.id for i in carried]
    assert [i.id for i in await investments.live_on_account(account.id)] == [
        top_up.investment.id]

    await synced_db["investments"].update_one(
        {"_id": top_up.investment.id}, {"$set": {"status": InvestmentStatus.CANCELLED.value}})
    carried = await investments.live_on_account(account.id,
                                                first_investment_id=account.investment_id)
    assert [i.id for i in carried] == [account.investment_id]
