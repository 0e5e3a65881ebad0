"""Backfill `gain_amount` and `return_pct` on investments recorded before they existed.

The client dashboard and the admin totals read both fields; legacy investments lack them (or
hold null) until their first MT5 sync. up: gain = current_value - principal_amount, return in
percent to 4 places, exact Decimal arithmetic.

up records, per investment it fills, the two fields as they were (absent or their value), the
figures it wrote and the document's `version` in `migration_state`, before writing the figures;
investments keep no trace of the migration. down puts back exactly those fields on exactly
those investments (`$unset` where a field was absent), and only where the figures are still
the backfill's at the same version, so an investment synced or edited since keeps its figures.
Both steps are idempotent: a rerun of up records and fills only what is still unfilled, a
rerun of down matches nothing it already reverted.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bson import Decimal128
from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

VERSION = "20261123120000"
STATE = "migration_state"
FIELDS = ("gain_amount", "return_pct")
BATCH = 1000
_PERCENT_PLACES = Decimal("0.0001")


def _figures(principal: Decimal, current: Decimal) -> tuple[Decimal128, Decimal128 | None]:
    gain = current - principal
    if principal <= 0:
        return Decimal128(gain), None
    percent = (gain / principal * 100).quantize(_PERCENT_PLACES, rounding=ROUND_HALF_EVEN)
    return Decimal128(gain), Decimal128(percent)


def _state_id(investment_id: Any) -> dict[str, Any]:
    return {"migration": VERSION, "investment": investment_id}


async def _fill(db: AsyncDatabase[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    records: list[ReplaceOne[dict[str, Any]]] = []
    updates: list[UpdateOne] = []
    for doc in docs:
        gain, percent = _figures(doc["principal_amount"].to_decimal(),
                                 doc["current_value"].to_decimal())
        before = {name: doc[name] for name in FIELDS if name in doc}
        after = {"gain_amount": gain, "return_pct": percent}
        version = doc.get("version")
        records.append(ReplaceOne(
            {"_id": _state_id(doc["_id"])},
            {"_id": _state_id(doc["_id"]), "migration": VERSION, "collection": "investments",
             "before": before, "after": after, "version": version},
            upsert=True))
        # Written only if the document is still as it was read.
        match: dict[str, Any] = {"_id": doc["_id"], "gain_amount": None, "version": version,
                                 "return_pct": before.get("return_pct")}
        if "return_pct" not in before:
            match["return_pct"] = {"$exists": False}
        updates.append(UpdateOne(match, {"$set": after}))
    # The record goes first: a crash in between leaves a record whose figures match nothing.
    await db[STATE].bulk_write(records, ordered=False)
    await db["investments"].bulk_write(updates, ordered=False)


async def up(db: AsyncDatabase[dict[str, Any]]) -> None:
    query = {"gain_amount": None, "principal_amount": {"$type": "decimal"},
             "current_value": {"$type": "decimal"}}
    projection = {"principal_amount": 1, "current_value": 1, "version": 1,
                  **dict.fromkeys(FIELDS, 1)}
    batch: list[dict[str, Any]] = []
    async for doc in db["investments"].find(query, projection):
        batch.append(doc)
        if len(batch) >= BATCH:
            await _fill(db, batch)
            batch = []
    if batch:
        await _fill(db, batch)


async def down(db: AsyncDatabase[dict[str, Any]]) -> None:
    batch: list[UpdateOne] = []
    async for record in db[STATE].find({"migration": VERSION}):
        before: dict[str, Any] = record["before"]
        update: dict[str, Any] = {}
        restored = {name: before[name] for name in FIELDS if name in before}
        absent = {name: "" for name in FIELDS if name not in before}
        if restored:
            update["$set"] = restored
        if absent:
            update["$unset"] = absent
        match = {"_id": record["_id"]["investment"], "version": record["version"],
                 **record["after"]}
        batch.append(UpdateOne(match, update))
        if len(batch) >= BATCH:
            await db["investments"].bulk_write(batch, ordered=False)
            batch = []
    if batch:
        await db["investments"].bulk_write(batch, ordered=False)
    await db[STATE].delete_many({"migration": VERSION})
