"""The shipped migration that values investments by units from the stored history: the issue's
top-up, valued by principal before, by units after; a rerun writes nothing; down puts back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.mt5_accounts import Mt5Account
from backend.models.mt5_deals import DealEntry, DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.ops import migrations as ops
from backend.services import Services
from backend.settings import Settings
from tests.factories import ADMIN, investment_create
from tests.sync_factories import approved_client, invested_mapping

Db = AsyncDatabase[dict[str, Any]]
LOGIN = 61_000_777


def _shipped() -> Any:
    [migration] = [m for m in ops.discover() if m.name == "unit_valuation"]
    return migration.load()


def deposit(account: Mt5Account, ticket: int, amount: str, moment: datetime) -> dict[str, Any]:
    assert account.id is not None
    return Mt5Deal(mt5_account_id=account.id, mt5_login=account.mt5_login, ticket=ticket,
                   time=moment, deal_type=DealType.BALANCE, entry=DealEntry.IN,
                   volume=Decimal(0), price=Decimal(0), profit=Decimal(amount),
                   commission=Decimal(0), swap=Decimal(0), fee=Decimal(0), currency="USD",
                   synced_at=moment).to_document()


def close(account: Mt5Account, day: date, equity: str) -> dict[str, Any]:
    assert account.id is not None
    moment = datetime(day.year, day.month, day.day, 21, tzinfo=UTC)
    return Mt5EquityPoint(mt5_account_id=account.id, mt5_login=account.mt5_login,
                          day=moment.replace(hour=0), balance=Decimal(equity),
                          equity=Decimal(equity), currency="USD",
                          recorded_at=moment).to_document()


async def figures(db: Db) -> dict[str, tuple[Any, ...]]:
    return {doc["investment_id"]: (doc["current_value"].to_decimal(), doc.get("units"),
                                   doc.get("awaiting_deposit"), doc["version"])
            async for doc in db["investments"].find({})}


async def test_the_top_up_valued_by_principal_is_valued_by_units_and_back(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await approved_client(services)
    account = await invested_mapping(services, client, LOGIN, Decimal("80000.00"),
                                     deposit_date=date(2025, 1, 6))
    top_up = (await services.investments.create(
        investment_create(client, principal_amount=Decimal("20000.00"),
                          deposit_date=date(2025, 3, 17)), actor=ADMIN)).investment
    await synced_db["mt5_deals"].insert_many([
        deposit(account, 1, "80000.00", datetime(2025, 1, 6, 9, tzinfo=UTC)),
        deposit(account, 2, "20000.00", datetime(2025, 3, 17, 9, tzinfo=UTC))])
    await synced_db["mt5_equity_history"].insert_many([
        close(account, date(2025, 3, 14), "81430.89"),
        close(account, date(2025, 3, 17), "101430.89")])
    # What the split by principal had written.
    for investment_id, value in ((account.investment_id, "81144.71"), (top_up.id, "20286.18")):
        await synced_db["investments"].update_one(
            {"_id": investment_id}, {"$set": {"current_value": Decimal128(value)}})
    before = await figures(synced_db)
    up, down = _shipped()

    await up(synced_db)
    after = await figures(synced_db)
    first = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
    second = await services.investments.get(top_up.id)  # type: ignore[arg-type]
    assert (first.current_value, first.gain_amount, first.units) == (
        Decimal("81430.89"), Decimal("1430.89"), Decimal("80000.00000000"))
    assert (second.current_value, second.gain_amount, second.units) == (
        Decimal("20000.00"), Decimal("0.00"), Decimal("19648.56334002"))
    assert first.awaiting_deposit is second.awaiting_deposit is False

    await up(synced_db)
    assert await figures(synced_db) == after, "a rerun replays to the same figures"

    await down(synced_db)
    restored = await figures(synced_db)
    assert {key: value[:3] for key, value in restored.items()} == {
        key: value[:3] for key, value in before.items()}
    assert await synced_db["migration_state"].count_documents({}) == 0
