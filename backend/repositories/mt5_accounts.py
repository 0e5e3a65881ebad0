"""MT5 account mappings. The investor password is encrypted here and decrypted only for the
sync job, through `investor_password()`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from backend.models.mt5_accounts import Mt5Account
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
