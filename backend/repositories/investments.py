"""Investments: the money the clients put into the funds."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import DESCENDING

from backend.models.investments import Investment, InvestmentStatus
from backend.repositories.base import Page, Repository


class InvestmentRepository(Repository[Investment]):
    collection_name = "investments"
    model = Investment

    async def by_idempotency_key(self, key: str) -> Investment | None:
        return await self.find_one({"idempotency_key": key})

    async def search(
        self,
        *,
        client_id: ObjectId | None = None,
        fund_code: str | None = None,
        status: InvestmentStatus | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[Investment]:
        query: dict[str, Any] = {}
        if client_id is not None:
            query["client_id"] = client_id
        if fund_code:
            query["fund_code"] = fund_code
        if status is not None:
            query["status"] = status.value
        return await self.page(query, sort=(("created_at", DESCENDING),), page=page,
                               page_size=page_size)

    async def for_account(self, mt5_account_id: ObjectId) -> list[Investment]:
        return await self.find(
            {"mt5_account_id": mt5_account_id,
             "status": {"$in": [InvestmentStatus.ACTIVE.value, InvestmentStatus.PENDING.value]}}
        )

    async def totals_by_fund(self) -> list[dict[str, Any]]:
        """Principal and current value per fund and currency; Decimal128 sums stay exact."""
        return await self.aggregate([
            {"$match": {"status": {"$in": ["active", "pending"]}}},
            {"$group": {
                "_id": {"fund_code": "$fund_code", "currency": "$currency"},
                "principal": {"$sum": "$principal_amount"},
                "current_value": {"$sum": "$current_value"},
                "count": {"$sum": 1},
            }},
            {"$sort": {"_id.fund_code": 1}},
        ])

    async def live_on_account(
        self, mt5_account_id: ObjectId, *, first_investment_id: ObjectId | None = None
    ) -> list[Investment]:
        """The pending and active investments an MT5 account carries, oldest deposit first.

        A top-up is a second investment on the same account: the account's `investment_id`
        names only the first one, each investment's `mt5_account_id` names the account. The
        first one (`first_investment_id`) counts even while it names no account yet.
        """
        carried: dict[str, Any] = {"mt5_account_id": mt5_account_id}
        if first_investment_id is not None:
            carried = {"$or": [carried, {"_id": first_investment_id, "mt5_account_id": None}]}
        return await self.find(
            {**carried, "status": {"$in": [InvestmentStatus.ACTIVE.value,
                                           InvestmentStatus.PENDING.value]}},
            sort=(("deposit_date", 1), ("investment_id", 1)))
