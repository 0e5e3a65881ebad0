"""Daily equity points: one per MT5 account and UTC day, the day's latest snapshot winning."""

from __future__ import annotations

from collections.abc import Sequence

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from backend.errors import DuplicateEntity
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository


class Mt5EquityHistoryRepository(Repository[Mt5EquityPoint]):
    collection_name = "mt5_equity_history"
    model = Mt5EquityPoint
    versioned = False
    timestamped = False

    async def append_daily_point(self, point: Mt5EquityPoint) -> bool:
        """Record the point as its account's point of the day, unless the day already holds a
        later one; False then, and nothing is written.

        One upsert on (account, day) that matches only a point recorded no later than this
        one; a later point makes the upsert collide with it on the unique index instead.
        """
        document = point.to_document()
        document.pop("_id", None)
        try:
            with driver_errors(self.collection_name):
                await self._collection.update_one(
                    {"mt5_account_id": point.mt5_account_id, "day": point.day,
                     "recorded_at": {"$lte": point.recorded_at}},
                    {"$set": document}, upsert=True)
        except DuplicateEntity:
            return False
        return True

    async def of_accounts(self, account_ids: Sequence[ObjectId]) -> list[Mt5EquityPoint]:
        """Every daily point of these accounts in one round trip, by account then day."""
        if not account_ids:
            return []
        return await self._find({"mt5_account_id": {"$in": list(account_ids)}},
                                sort=(("mt5_account_id", ASCENDING), ("day", ASCENDING)))

    async def latest_of_accounts(self, account_ids: Sequence[ObjectId]
                                 ) -> dict[ObjectId, Mt5EquityPoint]:
        """Each account's latest daily point, in one round trip."""
        if not account_ids:
            return {}
        rows = await self._aggregate([
            {"$match": {"mt5_account_id": {"$in": list(account_ids)}}},
            {"$sort": {"mt5_account_id": 1, "day": -1}},
            {"$group": {"_id": "$mt5_account_id", "point": {"$first": "$$ROOT"}}},
        ])
        return {row["_id"]: self._load(row["point"]) for row in rows}

    async def page_of(self, account_id: ObjectId, *, page: int = 1,
                      page_size: int = 50) -> Page[Mt5EquityPoint]:
        """An account's equity history, newest day first."""
        return await self._page({"mt5_account_id": account_id}, sort=(("day", DESCENDING),),
                                page=page, page_size=page_size)
