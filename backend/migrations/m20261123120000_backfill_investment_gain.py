"""Backfill `gain_amount` and `return_pct` on investments recorded before they existed.

The client dashboard and the admin totals read both fields; legacy investments lack them (or
hold null) until their first MT5 sync. up: gain = current_value - principal_amount, return in
percent to 4 places, exact Decimal arithmetic. down: back to null on the investments whose
performance was never synced (`performance_updated_at` null), which are the ones up filled; a
synced investment's figures came from the sync and are left alone.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bson import Decimal128
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

BATCH = 1000
_PERCENT_PLACES = Decimal("0.0001")


def _figures(principal: Decimal, current: Decimal) -> tuple[Decimal128, Decimal128 | None]:
    gain = current - principal
    if principal <= 0:
        return Decimal128(gain), None
    percent = (gain / principal * 100).quantize(_PERCENT_PLACES, rounding=ROUND_HALF_EVEN)
    return Decimal128(gain), Decimal128(percent)


async def up(db: AsyncDatabase[dict[str, Any]]) -> None:
    investments = db["investments"]
    batch: list[UpdateOne] = []
    query = {"gain_amount": None, "principal_amount": {"$type": "decimal"},
             "current_value": {"$type": "decimal"}}
    async for doc in investments.find(query, {"principal_amount": 1, "current_value": 1}):
        gain, percent = _figures(doc["principal_amount"].to_decimal(),
                                 doc["current_value"].to_decimal())
        batch.append(UpdateOne({"_id": doc["_id"], "gain_amount": None},
                               {"$set": {"gain_amount": gain, "return_pct": percent}}))
        if len(batch) >= BATCH:
            await investments.bulk_write(batch, ordered=False)
            batch = []
    if batch:
        await investments.bulk_write(batch, ordered=False)


async def down(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["investments"].update_many(
        {"performance_updated_at": None, "gain_amount": {"$ne": None}},
        {"$set": {"gain_amount": None, "return_pct": None}},
    )
