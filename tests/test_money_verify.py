"""verify's money checks (part of `make verify`): a clean ledger passes; each kind of damage
is found."""

from __future__ import annotations

from datetime import date
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.users import KycStatus
from backend.ops.verify_money import money_checks as verify
from backend.services import Services
from backend.settings import Settings
from tests.factories import ADMIN, investment_create, make_user

Db = AsyncDatabase[dict[str, Any]]


def failed(results: list[Any]) -> dict[str, int]:
    return {r.name: r.failed for r in results if not r.ok}


async def _paid_investment(services: Services) -> Any:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = await services.investments.create(
        investment_create(client, deposit_date=date(2025, 1, 31)), actor=ADMIN)
    await services.contracts.pay(created.investment, 1, paid_on=date(2025, 5, 1),
                                 reference="WIRE-1", request_key="verify-key-1", actor=ADMIN)
    return created.investment


async def test_a_clean_ledger_passes_every_money_check(synced_db: Db, settings: Settings) -> None:
    await _paid_investment(Services(synced_db, settings))
    results = await verify(synced_db)
    names = {r.name: r for r in results}
    assert names["paid schedule items <-> payout ledger entries (one to one)"].checked == 2
    assert failed(results) == {}


async def test_an_item_unmarked_after_its_payout_is_found(synced_db: Db,
                                                          settings: Settings) -> None:
    investment = await _paid_investment(Services(synced_db, settings))
    await synced_db["schedule_items"].update_one(
        {"investment_id": investment.id, "number": 1},
        {"$set": {"status": "due", "ledger_entry_id": None}})
    assert failed(await verify(synced_db)) == {
        "paid schedule items <-> payout ledger entries (one to one)": 1}


async def test_a_paid_item_without_its_entry_and_orphans_are_found(
        synced_db: Db, settings: Settings) -> None:
    investment = await _paid_investment(Services(synced_db, settings))
    await synced_db["schedule_items"].update_one(
        {"investment_id": investment.id, "number": 2},
        {"$set": {"status": "paid", "ledger_entry_id": ObjectId()}})
    await synced_db["schedule_items"].insert_one({
        **(await synced_db["schedule_items"].find_one({"investment_id": investment.id,
                                                       "number": 3})),
        "_id": ObjectId(), "investment_id": ObjectId()})
    result = failed(await verify(synced_db))
    assert result == {"paid schedule items <-> payout ledger entries (one to one)": 1,
                      "schedule_items.investment_id -> investments": 1}


async def test_a_confirmed_investment_without_its_schedule_is_found(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = await services.investments.create(investment_create(client), actor=ADMIN)
    await synced_db["schedule_items"].delete_many({"investment_id": created.investment.id})
    assert failed(await verify(synced_db)) == {
        "confirmed investments -> schedule and subscription entry": 1}
    await services.contracts.lifecycle()
    assert failed(await verify(synced_db)) == {}
