"""Investments: the money the clients put into the funds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING

from backend.models._base import OUTBOX_FIELD
from backend.models.investments import INVESTED_STATUSES, Investment, InvestmentStatus
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository, check_page

#: Investments whose money is, or is announced to be, in the fund.
LIVE_IN_FUND = INVESTED_STATUSES | {InvestmentStatus.PENDING}


@dataclass(frozen=True, slots=True)
class InvestmentFilter:
    client_id: ObjectId | None = None
    fund_code: str | None = None
    status: InvestmentStatus | None = None

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.client_id is not None:
            query["client_id"] = self.client_id
        if self.fund_code:
            query["fund_code"] = self.fund_code
        if self.status is not None:
            query["status"] = self.status.value
        return query


class InvestmentRepository(Repository[Investment]):
    collection_name = "investments"
    model = Investment

    async def by_idempotency_key(self, key: str) -> Investment | None:
        return await self._find_one({"idempotency_key": key})

    async def search(
        self,
        *,
        client_id: ObjectId | None = None,
        fund_code: str | None = None,
        status: InvestmentStatus | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[Investment]:
        query = InvestmentFilter(client_id, fund_code, status).query()
        return await self._page(query, sort=(("created_at", DESCENDING),), page=page,
                               page_size=page_size)

    async def totals_by_fund(self) -> list[dict[str, Any]]:
        """Principal and current value per fund and currency; Decimal128 sums stay exact."""
        return await self._aggregate([
            {"$match": {"status": {"$in": sorted(s.value for s in LIVE_IN_FUND)}}},
            {"$group": {
                "_id": {"fund_code": "$fund_code", "currency": "$currency"},
                "principal": {"$sum": "$principal_amount"},
                "current_value": {"$sum": "$current_value"},
                "count": {"$sum": 1},
            }},
            {"$sort": {"_id.fund_code": 1}},
        ])

    async def list_with_client_names(
        self, scope: InvestmentFilter, *, page: int = 1, page_size: int = 20
    ) -> tuple[list[tuple[Investment, str | None]], int]:
        """A page of investments, newest first, each with its client's full name, and the
        total, in one round trip ($facet with a $lookup on users)."""
        check_page(page, page_size)
        [facets] = await self._aggregate([
            {"$match": scope.query()},
            {"$facet": {
                "total": [{"$count": "n"}],
                "items": [
                    {"$sort": {"created_at": -1, "_id": -1}},
                    {"$skip": (page - 1) * page_size},
                    {"$limit": page_size},
                    {"$lookup": {"from": "users", "localField": "client_id",
                                 "foreignField": "_id", "as": "_client",
                                 "pipeline": [{"$project": {"first_name": 1,
                                                            "last_name": 1}}]}},
                ],
            }},
        ])
        total = facets["total"][0]["n"] if facets["total"] else 0
        rows = []
        for raw in facets["items"]:
            client = raw.pop("_client", [])
            name = f"{client[0]['first_name']} {client[0]['last_name']}" if client else None
            rows.append((self._load(raw), name))
        return rows, total

    async def withdraw_unaudited(self, investment_id: ObjectId) -> bool:
        """Take back an investment whose creation failed half-way, only while its audit record
        still waits in its outbox (nobody has seen it audited); True when it was removed."""
        with driver_errors(self.collection_name):
            result = await self._collection.delete_one(
                {"_id": investment_id, f"{OUTBOX_FIELD}.0": {"$exists": True}})
        return result.deleted_count == 1

    async def reconcilable(self, scope: InvestmentFilter, *,
                           statuses: Sequence[InvestmentStatus]) -> list[Investment]:
        """The investments in scope with one of `statuses`, oldest deposit first."""
        query = {**scope.query(), "status": {"$in": [status.value for status in statuses]}}
        return await self._find(query, sort=(("deposit_date", 1), ("investment_id", 1)))
    async def live_on_account(
        self, mt5_account_id: ObjectId, *, first_investment_id: ObjectId | None = None
    ) -> list[Investment]:
        """The investments an MT5 account carries (pending, incubating, active or matured),
        oldest deposit first.

        A top-up is a second investment on the same account: the account's `investment_id`
        names only the first one, each investment's `mt5_account_id` names the account. The
        first one (`first_investment_id`) counts even while it names no account yet.
        """
        carried: dict[str, Any] = {"mt5_account_id": mt5_account_id}
        if first_investment_id is not None:
            carried = {"$or": [carried, {"_id": first_investment_id, "mt5_account_id": None}]}
        return await self._find(
            {**carried, "status": {"$in": sorted(s.value for s in LIVE_IN_FUND)}},
            sort=(("deposit_date", 1), ("investment_id", 1)))

    async def on_accounts(self, mt5_account_ids: Sequence[ObjectId], *,
                          first_investment_ids: Sequence[ObjectId] = ()) -> list[Investment]:
        """Every investment these accounts carry or carried (all but cancelled ones, which never
        took money), oldest deposit first, in one round trip: valuation replays them all. The
        accounts' first investments (`first_investment_ids`) count even while they name no
        account yet."""
        if not mt5_account_ids:
            return []
        carried: dict[str, Any] = {"mt5_account_id": {"$in": list(mt5_account_ids)}}
        if first_investment_ids:
            carried = {"$or": [carried, {"_id": {"$in": list(first_investment_ids)},
                                         "mt5_account_id": None}]}
        return await self._find(
            {**carried, "status": {"$ne": InvestmentStatus.CANCELLED.value}},
            sort=(("deposit_date", 1), ("investment_id", 1)))

    async def by_ids(self, investment_ids: Sequence[ObjectId]) -> list[Investment]:
        """These investments, in one round trip (missing ids are left out)."""
        if not investment_ids:
            return []
        return await self._find({"_id": {"$in": list(investment_ids)}},
                                sort=(("deposit_date", 1), ("investment_id", 1)))

    async def of_client(self, client_id: ObjectId) -> list[Investment]:
        """Every investment of a client but the cancelled ones, oldest deposit first."""
        return await self._find(
            {"client_id": client_id, "status": {"$ne": InvestmentStatus.CANCELLED.value}},
            sort=(("deposit_date", 1), ("investment_id", 1)))

    async def in_funds(self, fund_codes: Sequence[str] | None = None) -> list[Investment]:
        """Every investment of these funds (all funds when None) but the cancelled ones."""
        query: dict[str, Any] = {"status": {"$ne": InvestmentStatus.CANCELLED.value}}
        if fund_codes is not None:
            query["fund_code"] = {"$in": list(fund_codes)}
        return await self._find(query, sort=(("fund_code", 1), ("deposit_date", 1),
                                             ("investment_id", 1)))

    async def in_statuses(self, statuses: Iterable[InvestmentStatus]) -> list[Investment]:
        """Every investment under the money engine (with a terms version) in one of
        `statuses`, oldest deposit first. Investments recorded before the engine wait for the
        migration m20261130120000 and are left out."""
        return await self._find({"status": {"$in": sorted(s.value for s in statuses)},
                                 "terms_version": {"$ne": None}},
                                sort=(("deposit_date", 1), ("investment_id", 1)))
