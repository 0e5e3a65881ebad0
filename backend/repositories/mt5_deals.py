"""MT5 deals: each account's deal history as the sync stored it."""

from __future__ import annotations

from bson import ObjectId

from backend.models.mt5_deals import DealType, Mt5Deal
from backend.repositories.base import Repository


class Mt5DealRepository(Repository[Mt5Deal]):
    collection_name = "mt5_deals"
    model = Mt5Deal
    versioned = False
    timestamped = False

    async def balance_deals(self, account_ids: list[ObjectId]) -> list[Mt5Deal]:
        """Deposits and withdrawals of these accounts, oldest first."""
        if not account_ids:
            return []
        return await self._find(
            {"mt5_account_id": {"$in": account_ids}, "deal_type": DealType.BALANCE.value},
            sort=(("time", 1), ("ticket", 1)))
