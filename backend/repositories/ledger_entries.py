"""The capital ledger: append-only. There is no update or delete here on purpose."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from backend.errors import DuplicateEntity, PermissionDenied
from backend.models.ledger_entries import LedgerEntry
from backend.repositories.base import Page, Repository


class LedgerRepository(Repository[LedgerEntry]):
    collection_name = "ledger_entries"
    model = LedgerEntry
    versioned = False
    timestamped = False

    async def book(self, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        """Append an entry once per idempotency key: (the entry, True) when this call stored
        it, (the entry stored first, False) when the movement was already booked."""
        try:
            return await self.create(entry), True
        except DuplicateEntity as error:
            if (error.details or {}).get("field") != "idempotency_key":
                raise
        existing = await self.by_key(entry.idempotency_key)
        if existing is None:  # pragma: no cover - the unique index just said it exists
            raise DuplicateEntity("the ledger entry exists but cannot be read back",
                                  field="idempotency_key")
        return existing, False

    async def by_key(self, key: str) -> LedgerEntry | None:
        return await self._find_one({"idempotency_key": key})

    async def by_keys(self, keys: list[str]) -> dict[str, LedgerEntry]:
        """The entries booked under any of `keys`, by key, in one round trip."""
        if not keys:
            return {}
        found = await self._find({"idempotency_key": {"$in": keys}})
        return {entry.idempotency_key: entry for entry in found}

    async def update(self, *args: Any, **kwargs: Any) -> LedgerEntry:
        raise PermissionDenied("the ledger is append-only: book a reversal instead",
                               code="LEDGER_APPEND_ONLY")

    async def delete(self, *args: Any, **kwargs: Any) -> LedgerEntry:
        raise PermissionDenied("the ledger is append-only: book a reversal instead",
                               code="LEDGER_APPEND_ONLY")

    async def search(self, *, client_id: ObjectId | None = None,
                     investment_id: ObjectId | None = None, page: int = 1,
                     page_size: int = 50) -> Page[LedgerEntry]:
        query: dict[str, Any] = {}
        if client_id is not None:
            query["client_id"] = client_id
        if investment_id is not None:
            query["investment_id"] = investment_id
        return await self._page(query, sort=(("effective_date", ASCENDING),
                                             ("booked_at", ASCENDING)),
                                page=page, page_size=page_size)

    async def of_clients(self, client_ids: list[ObjectId]) -> list[LedgerEntry]:
        """Every entry of these clients in one round trip, oldest first."""
        return await self._find({"client_id": {"$in": client_ids}},
                                sort=(("effective_date", ASCENDING), ("booked_at", ASCENDING)))

    async def of_investments(self, investment_ids: list[ObjectId]) -> list[LedgerEntry]:
        """Every entry of these investments in one round trip, oldest first."""
        if not investment_ids:
            return []
        return await self._find({"investment_id": {"$in": investment_ids}},
                                sort=(("effective_date", ASCENDING), ("booked_at", ASCENDING)))

    async def of_investment(self, investment_id: ObjectId) -> list[LedgerEntry]:
        return await self._find({"investment_id": investment_id},
                                sort=(("effective_date", ASCENDING), ("booked_at", ASCENDING)))

    async def all_entries(self) -> list[LedgerEntry]:
        return await self._find({}, sort=(("_id", ASCENDING),))
