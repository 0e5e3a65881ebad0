"""Daily equity points: one per MT5 account and UTC day, the day's latest snapshot winning."""

from __future__ import annotations

from backend.errors import DuplicateEntity
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository


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
