"""MT5 deals: an account's deal history, stored once per (account, ticket).

The sync stores what the terminal said and never changes it: a deal seen again (a replay, or
the overlap of two sync windows) is left exactly as first stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from bson import ObjectId
from pymongo import UpdateOne

from backend.models.mt5_deals import DealType, Mt5Deal
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository

#: Deals per bulk write: one round trip each, however many deals an account has.
BATCH = 1000


class Mt5DealRepository(Repository[Mt5Deal]):
    collection_name = "mt5_deals"
    model = Mt5Deal
    versioned = False
    timestamped = False

    async def upsert_batch(self, deals: Sequence[Mt5Deal]) -> int:
        """Store the deals not stored yet, keyed on (mt5_account_id, ticket); returns how many
        were new. One unordered bulk write per `BATCH` deals."""
        operations = []
        for deal in deals:
            document = deal.to_document()
            document.pop("_id", None)
            operations.append(UpdateOne(
                {"mt5_account_id": document["mt5_account_id"], "ticket": document["ticket"]},
                {"$setOnInsert": document}, upsert=True))
        new = 0
        with driver_errors(self.collection_name):
            for begin in range(0, len(operations), BATCH):
                result = await self._collection.bulk_write(operations[begin:begin + BATCH],
                                                          ordered=False)
                new += result.upserted_count
        return new

    async def balance_deals(self, account_ids: Sequence[ObjectId]) -> list[Mt5Deal]:
        """The deposits and withdrawals (balance deals) of these accounts, oldest first."""
        if not account_ids:
            return []
        return await self._find(
            {"mt5_account_id": {"$in": list(account_ids)}, "deal_type": DealType.BALANCE.value},
            sort=(("time", 1), ("ticket", 1)))

    async def page_of(self, account_id: ObjectId, *, page: int = 1,
                      page_size: int = 50) -> Page[Mt5Deal]:
        """An account's stored deals, newest first."""
        return await self._page({"mt5_account_id": account_id},
                                sort=(("time", -1), ("ticket", -1)), page=page,
                                page_size=page_size)
