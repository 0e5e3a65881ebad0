"""Value every investment on an MT5 account by units, from the stored history.

Before unit accounting the sync shared each account's equity among its investments in
proportion to principal. up replays each account's stored history exactly as the sync now does
(`backend.services.valuation.group_books`: the investments the account carries or carried, the
deposit deals stored in `mt5_deals`, the daily points of `mt5_equity_history`, the ledger's
payouts) and writes onto every live investment (pending to matured) of the account its actual
value (`current_value`, with `gain_amount` and `return_pct`), its `units` and whether its deposit
is still awaited (`awaiting_deposit`). Investments on no account, and accounts never synced,
are left as they are (valued at cost); closed and cancelled investments keep their values.

Valuations are not audited one by one, as the sync's are not: the history they come from is
kept. Before its first write to an investment, up records the fields it changes as they were
in `migration_state`, with the version it leaves; a rerun replays the same history to the same
figures and writes only where they differ (a sync since may have moved them), keeping the first
record of what was there before.

down puts the recorded fields back (removing `units` and `awaiting_deposit` where they were
absent) on each investment still at the version up left; one a sync has valued since keeps its
newer figures, since they are the sync's to give.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.investments import Investment
from backend.models.ledger_entries import LedgerEntry
from backend.models.mt5_accounts import Mt5Account
from backend.models.mt5_deals import Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.repositories.investments import LIVE_IN_FUND
from backend.services.valuation import carried_by, group_books, ledger_flows

VERSION = "20261201120000"
STATE = "migration_state"
FIELDS = ("current_value", "gain_amount", "return_pct", "units", "awaiting_deposit")


def _bson(value: Any) -> Any:
    return Decimal128(str(value)) if isinstance(value, Decimal) else value


def _loaded[M: (Investment, Mt5Account, Mt5Deal, Mt5EquityPoint, LedgerEntry)](
        model: type[M], raw: dict[str, Any]) -> M | None:
    try:
        return model.from_document(raw)
    except ValidationError:
        return None  # a document the models refuse is `make validate-data`'s to report


async def _all[M: (Investment, Mt5Account, Mt5Deal, Mt5EquityPoint, LedgerEntry)](
        db: AsyncDatabase[dict[str, Any]], model: type[M],
        query: dict[str, Any]) -> list[M]:
    found = []
    async for raw in db[model.collection_name].find(query):
        loaded = _loaded(model, raw)
        if loaded is not None:
            found.append(loaded)
    return found


async def up(db: AsyncDatabase[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    accounts = {a.id: a for a in await _all(db, Mt5Account, {}) if a.id is not None}
    investments = await _all(db, Investment, {"status": {"$ne": "cancelled"}})
    carried = carried_by(accounts, investments)
    if not carried:
        return
    listed = [i.id for group in carried.values() for i in group]
    deals = await _all(db, Mt5Deal, {"mt5_account_id": {"$in": list(carried)},
                                     "deal_type": "balance"})
    points = await _all(db, Mt5EquityPoint, {"mt5_account_id": {"$in": list(carried)}})
    entries = await _all(db, LedgerEntry, {"investment_id": {"$in": listed}})
    synced = {point.mt5_account_id for point in points}
    books = group_books(accounts, carried, deals=deals, points=points,
                        flows=ledger_flows(entries))
    for account_id, valuations in books.items():
        if account_id not in synced:
            continue
        for valuation in valuations:
            for investment in valuation.investments:
                if investment.status in LIVE_IN_FUND:
                    await _write(db, investment, valuation.of(investment).actual_value,
                                 units=valuation.of(investment).units,
                                 awaiting=valuation.of(investment).awaiting_deposit, now=now)


async def _write(db: AsyncDatabase[dict[str, Any]], investment: Investment, value: Decimal, *,
                 units: Decimal, awaiting: bool, now: datetime) -> None:
    gain, return_pct = investment.performance(value)
    after = {"current_value": value, "gain_amount": gain, "return_pct": return_pct,
             "units": units, "awaiting_deposit": awaiting}
    stored = {name: getattr(investment, name) for name in FIELDS}
    if stored == after:
        return
    raw = await db["investments"].find_one({"_id": investment.id}, dict.fromkeys(FIELDS, 1))
    if raw is None:
        return
    before = {name: raw[name] for name in FIELDS if name in raw}
    result = await db["investments"].update_one(
        {"_id": investment.id, "version": investment.version},
        {"$set": {**{k: _bson(v) for k, v in after.items()}, "updated_at": now},
         "$inc": {"version": 1}})
    if result.modified_count == 0:
        return  # changed meanwhile (a sync valued it): its figures stand
    key = {"migration": VERSION, "investment": investment.id}
    await db[STATE].update_one(
        {"_id": key},
        {"$setOnInsert": {"migration": VERSION, "collection": "investments", "before": before},
         "$set": {"version": investment.version + 1}}, upsert=True)


async def down(db: AsyncDatabase[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    async for record in db[STATE].find({"migration": VERSION}):
        investment_id: ObjectId = record["_id"]["investment"]
        before: dict[str, Any] = record["before"]
        update: dict[str, Any] = {"$set": {**{k: before[k] for k in FIELDS if k in before},
                                           "updated_at": now}, "$inc": {"version": 1}}
        absent = {name: "" for name in FIELDS if name not in before}
        if absent:
            update["$unset"] = absent
        await db["investments"].update_one({"_id": investment_id,
                                            "version": record["version"]}, update)
        await db[STATE].delete_one({"_id": record["_id"]})
