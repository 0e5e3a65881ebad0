"""Users: creation with bcrypt, authentication with lockout, search, statistics, KYC/AML."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument

from backend.errors import AccountLocked, AuthenticationFailed
from backend.models.users import User, UserType
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository
from backend.security.passwords import DummyHash, verify_password


class UserRepository(Repository[User]):
    collection_name = "users"
    model = User

    async def by_login(self, login: str) -> User | None:
        """A user by e-mail or username (both stored lower-case)."""
        key = login.strip().lower()
        field = "email" if "@" in key else "username"
        return await self._find_one({field: key})

    async def converted_from(self, prospect_id: ObjectId) -> User | None:
        """The client a prospect's conversion created (unique: `source_prospect_id`)."""
        return await self._find_one({"source_prospect_id": prospect_id})

    async def by_type(self, user_type: UserType, *, active_only: bool = True) -> list[User]:
        query: dict[str, Any] = {"user_type": user_type.value}
        if active_only:
            query["is_active"] = True
        return await self._find(query, sort=(("last_name", ASCENDING), ("first_name", ASCENDING)))

    async def full_names(self, ids: list[ObjectId]) -> dict[ObjectId, str]:
        """Full names for many users in one round trip (lists avoid N+1 lookups)."""
        if not ids:
            return {}
        raws = await self._find_raw(
            {"_id": {"$in": list(set(ids))}}, projection={"first_name": 1, "last_name": 1}
        )
        return {raw["_id"]: f"{raw.get('first_name', '')} {raw.get('last_name', '')}".strip()
                for raw in raws}

    async def search(
        self,
        *,
        text: str | None = None,
        user_type: UserType | None = None,
        is_active: bool | None = None,
        kyc_status: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[User]:
        query: dict[str, Any] = {}
        if text:
            pattern = {"$regex": re.escape(text.strip()), "$options": "i"}
            query["$or"] = [{field: pattern} for field in
                            ("first_name", "last_name", "email", "username")]
        if user_type is not None:
            query["user_type"] = user_type.value
        if is_active is not None:
            query["is_active"] = is_active
        if kyc_status is not None:
            query["kyc_status"] = kyc_status
        return await self._page(query, sort=(("created_at", -1),), page=page, page_size=page_size)

    async def statistics(self) -> dict[str, Any]:
        """Totals by type, by KYC status, active/inactive and sign-ups per month, in one
        aggregation."""
        pipeline = [
            {"$facet": {
                "by_type": [{"$group": {"_id": "$user_type", "count": {"$sum": 1}}}],
                "by_kyc_status": [{"$group": {"_id": "$kyc_status", "count": {"$sum": 1}}}],
                "by_active": [{"$group": {"_id": "$is_active", "count": {"$sum": 1}}}],
                "signups_per_month": [
                    {"$group": {
                        "_id": {"$dateTrunc": {"date": "$created_at", "unit": "month"}},
                        "count": {"$sum": 1},
                    }},
                    {"$sort": {"_id": 1}},
                ],
                "total": [{"$count": "count"}],
            }}
        ]
        [facets] = await self._aggregate(pipeline)
        active = {row["_id"]: row["count"] for row in facets["by_active"]}
        return {
            "total": facets["total"][0]["count"] if facets["total"] else 0,
            "by_type": {row["_id"]: row["count"] for row in facets["by_type"]},
            "by_kyc_status": {row["_id"]: row["count"] for row in facets["by_kyc_status"]},
            "active": active.get(True, 0),
            "inactive": active.get(False, 0),
            "signups_per_month": [
                {"month": row["_id"].strftime("%Y-%m"), "count": row["count"]}
                for row in facets["signups_per_month"]
            ],
        }

    async def authenticate(
        self,
        login: str,
        password: str,
        *,
        now: datetime,
        dummy_hash: DummyHash,
        max_failures: int,
        lockout: timedelta,
    ) -> User:
        """The user whose credentials these are, with failed attempts counted.

        `max_failures` consecutive failures lock the account for `lockout`; a success resets the
        counter. An unknown login is checked against a dummy hash so it costs the same time.

        Each attempt reserves its place in the count before the password is checked, so
        parallel guesses cannot outrun the limit: once `max_failures` attempts are in flight or
        failed, further ones are refused without a password check.
        """
        user = await self.by_login(login)
        if user is None:
            await verify_password(password, await dummy_hash.value())
            raise AuthenticationFailed("the login or password is wrong",
                                       code="INVALID_CREDENTIALS")
        with driver_errors(self.collection_name):
            if user.locked_until is not None and user.locked_until <= now:
                # The lock has run out: a fresh count starts (only once, whoever gets here).
                await self._collection.update_one(
                    {"_id": user.id, "locked_until": user.locked_until},
                    {"$set": {"failed_login_attempts": 0, "locked_until": None}})
            reserved = await self._collection.find_one_and_update(
                {"_id": user.id, "locked_until": None,
                 "failed_login_attempts": {"$lt": max_failures}},
                {"$inc": {"failed_login_attempts": 1}},
                return_document=ReturnDocument.AFTER,
            )
        if reserved is None:
            current = await self._find_one({"_id": user.id})
            locked_until = current.locked_until if current else None
            raise AccountLocked(
                "the account is locked after too many failed sign-ins",
                details={"locked_until": locked_until.isoformat() if locked_until else None},
            )
        if not await verify_password(password, user.password_hash):
            if reserved["failed_login_attempts"] >= max_failures:
                with driver_errors(self.collection_name):
                    await self._collection.update_one(
                        {"_id": user.id, "locked_until": None},
                        {"$set": {"locked_until": now + lockout}})
            raise AuthenticationFailed("the login or password is wrong",
                                       code="INVALID_CREDENTIALS")
        if not user.is_active:
            raise AuthenticationFailed("the account is deactivated", code="ACCOUNT_INACTIVE")
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one_and_update(
                {"_id": user.id},
                {"$set": {"failed_login_attempts": 0, "locked_until": None,
                          "last_login_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        return self._load(raw) if raw else user
