"""MT5 account mappings. The investor password is encrypted here and decrypted only for the
sync job, through `investor_password()`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import ObjectId

from backend.models._base import bson_ready
from backend.models.mt5_accounts import Mt5Account, SyncStatus
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository
from backend.security.crypto import FieldCipher


class Mt5AccountRepository(Repository[Mt5Account]):
    collection_name = "mt5_accounts"
    model = Mt5Account

    def __init__(self, db: Any, *, cipher: FieldCipher, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        self.cipher = cipher

    def seal_password(self, password: str) -> dict[str, str]:
        return {"investor_password_encrypted": self.cipher.encrypt(password),
                "password_key_id": self.cipher.key_id}

    async def investor_password(self, account: Mt5Account) -> str:
        """The clear password, for the sync job's log-in to the terminal only."""
        return self.cipher.decrypt(account.investor_password_encrypted)

    async def for_client(self, client_id: ObjectId) -> list[Mt5Account]:
        return await self._find({"client_id": client_id}, sort=(("fund_code", 1),))

    async def carrying(self, *, account_ids: list[ObjectId],
                       investment_ids: list[ObjectId]) -> list[Mt5Account]:
        """The accounts with these ids, or whose first investment is one of these, in one
        round trip."""
        if not account_ids and not investment_ids:
            return []
        return await self._find({"$or": [{"_id": {"$in": account_ids}},
                                         {"investment_id": {"$in": investment_ids}}]},
                                sort=(("account_id", 1),))

    async def in_funds(self, fund_codes: list[str] | None = None) -> list[Mt5Account]:
        """The accounts of these funds (every fund when None), by fund then account id."""
        query: dict[str, Any] = {} if fund_codes is None else {"fund_code": {"$in": fund_codes}}
        return await self._find(query, sort=(("fund_code", 1), ("account_id", 1)))

    async def for_client_fund(self, client_id: ObjectId, fund_code: str) -> Mt5Account | None:
        return await self._find_one({"client_id": client_id, "fund_code": fund_code})

    async def active(self) -> list[Mt5Account]:
        return await self._find({"is_active": True}, sort=(("account_id", 1),))

    async def search(self, *, client_id: ObjectId | None = None, fund_code: str | None = None,
                     sync_status: str | None = None, page: int = 1,
                     page_size: int = 20) -> Page[Mt5Account]:
        query: dict[str, Any] = {}
        if client_id is not None:
            query["client_id"] = client_id
        if fund_code:
            query["fund_code"] = fund_code
        if sync_status:
            query["sync_status"] = sync_status
        return await self._page(query, sort=(("created_at", -1),), page=page,
                               page_size=page_size)

    async def stale(self, *, older_than: datetime) -> list[dict[str, Any]]:
        """Active accounts with no successful sync since `older_than`; a mapping created since
        then has not had its chance yet and is not stale."""
        return await self._find_raw(
            {"is_active": True,
             "$or": [{"last_success_at": None, "created_at": {"$lt": older_than}},
                     {"last_success_at": {"$type": "date", "$lt": older_than}}]},
            projection={"account_id": 1, "last_success_at": 1, "sync_error": 1,
                        "created_at": 1},
            sort=(("account_id", 1),),
        )

    async def in_scope(self, *, client_id: ObjectId | None = None,
                       fund_code: str | None = None) -> list[Mt5Account]:
        """Every mapping, or a client's, or a fund's, or both."""
        query: dict[str, Any] = {}
        if client_id is not None:
            query["client_id"] = client_id
        if fund_code:
            query["fund_code"] = fund_code
        return await self._find(query, sort=(("account_id", 1),))

    async def by_login(self, mt5_login: int) -> Mt5Account | None:
        return await self._find_one({"mt5_login": mt5_login})
    async def due_for_sync(self) -> list[Mt5Account]:
        """Every active mapping, the one synced longest ago (or never) first."""
        return await self._find({"is_active": True},
                               sort=(("last_sync_at", 1), ("account_id", 1)))

    async def record_sync_success(
        self,
        account_id: ObjectId,
        *,
        balance: Decimal | None,
        equity: Decimal | None,
        margin: Decimal | None,
        free_margin: Decimal | None,
        margin_level: Decimal | None,
        profit: Decimal | None,
        leverage: int | None,
        snapshot_at: datetime,
        synced_at: datetime,
        deals_synced_to: datetime,
    ) -> bool:
        """Store a sync's snapshot, its success and the deals' new high-water mark.

        Never backwards: nothing is written, and False returned, when the account already has
        a later mark (a worker that lost its lease unnoticed must not undo a newer pass) or is
        gone. Not `version`/`updated_at`: those track edits of the mapping, and a sync every
        few minutes must not make an administrator's pending edit conflict.
        """
        changes = {
            "balance": balance, "equity": equity, "margin": margin, "free_margin": free_margin,
            "margin_level": margin_level, "profit": profit, "leverage": leverage,
            "snapshot_at": snapshot_at, "sync_status": SyncStatus.OK, "sync_error": None,
            "last_sync_at": synced_at, "last_success_at": synced_at,
            "deals_synced_to": deals_synced_to,
        }
        with driver_errors(self.collection_name):
            stored = await self._collection.update_one(
                {"_id": account_id, "$or": [{"deals_synced_to": None},
                                            {"deals_synced_to": {"$lte": deals_synced_to}}]},
                {"$set": {key: bson_ready(value) for key, value in changes.items()}})
        return stored.matched_count == 1

    async def record_sync_failure(self, account_id: ObjectId, *, error: str,
                                  at: datetime) -> None:
        """A failed sync: its status, error and time, and nothing else (the last good snapshot
        and high-water mark stay)."""
        with driver_errors(self.collection_name):
            await self._collection.update_one(
                {"_id": account_id},
                {"$set": {"sync_status": SyncStatus.FAILED.value, "sync_error": error,
                          "last_sync_at": at}})
