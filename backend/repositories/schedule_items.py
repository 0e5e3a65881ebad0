"""Schedule items: each investment's payment schedule, one document per item."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from backend.errors import NotFound
from backend.models.schedule_items import (
    OPEN_ITEM_STATUSES,
    ScheduleItem,
    ScheduleItemKind,
    ScheduleItemStatus,
)
from backend.repositories.base import Repository


class ScheduleItemRepository(Repository[ScheduleItem]):
    collection_name = "schedule_items"
    model = ScheduleItem

    async def of_investment(self, investment_id: ObjectId) -> list[ScheduleItem]:
        return await self._find({"investment_id": investment_id}, sort=(("number", ASCENDING),))

    async def of_investments(self, investment_ids: Sequence[ObjectId]) -> list[ScheduleItem]:
        """Every item of many investments in one round trip, by investment then number."""
        if not investment_ids:
            return []
        return await self._find({"investment_id": {"$in": list(investment_ids)}},
                                sort=(("investment_id", ASCENDING), ("number", ASCENDING)))

    async def item(self, investment_id: ObjectId, number: int) -> ScheduleItem:
        found = await self._find_one({"investment_id": investment_id, "number": number})
        if found is None:
            raise NotFound(f"the schedule has no item {number}",
                           details={"investment_id": str(investment_id), "number": number})
        return found

    async def investments_with_items(self, investment_ids: Sequence[ObjectId]) -> set[ObjectId]:
        """Which of these investments have a stored schedule, in one round trip."""
        if not investment_ids:
            return set()
        rows = await self._aggregate([
            {"$match": {"investment_id": {"$in": list(investment_ids)}}},
            {"$group": {"_id": "$investment_id"}},
        ])
        return {row["_id"] for row in rows}

    async def scheduled_by(self, day: datetime) -> list[ScheduleItem]:
        """Items still `scheduled` whose date has come (the lifecycle pass makes them due)."""
        return await self._find(
            {"status": ScheduleItemStatus.SCHEDULED.value, "due_date": {"$lte": day}},
            sort=(("due_date", ASCENDING), ("investment_id", ASCENDING), ("number", ASCENDING)))

    async def open_items(self, *, due_from: datetime | None = None,
                         due_before: datetime | None = None,
                         fund_code: str | None = None) -> list[ScheduleItem]:
        """Items still owed (scheduled or due) in a date window, oldest first."""
        query: dict[str, Any] = {"status": {"$in": sorted(OPEN_ITEM_STATUSES)}}
        window = {op: day for op, day in (("$gte", due_from), ("$lt", due_before))
                  if day is not None}
        if window:
            query["due_date"] = window
        if fund_code:
            query["fund_code"] = fund_code
        return await self._find(query, sort=(("due_date", ASCENDING), ("fund_code", ASCENDING),
                                             ("investment_ref", ASCENDING),
                                             ("number", ASCENDING)))

    async def overdue(self, *, before: datetime,
                      fund_code: str | None = None) -> list[ScheduleItem]:
        """Items due before `before` and still unpaid, oldest first."""
        query: dict[str, Any] = {"status": ScheduleItemStatus.DUE.value,
                                 "due_date": {"$lt": before}}
        if fund_code:
            query["fund_code"] = fund_code
        return await self._find(query, sort=(("due_date", ASCENDING),
                                             ("investment_ref", ASCENDING),
                                             ("number", ASCENDING)))

    async def unpriced_performance_shares(self) -> list[ScheduleItem]:
        """Performance-share items that are due and still have no amount, oldest first: the
        lifecycle pass prices them from the investment's unit valuation."""
        return await self._find(
            {"kind": ScheduleItemKind.PERFORMANCE_SHARE.value,
             "status": ScheduleItemStatus.DUE.value, "amount": None},
            sort=(("due_date", ASCENDING), ("investment_id", ASCENDING), ("number", ASCENDING)))

    async def all_items(self) -> list[ScheduleItem]:
        return await self._find({}, sort=(("investment_id", ASCENDING), ("number", ASCENDING)))
