"""Users: lookups, search, statistics, and the account's sign-in counter and lock."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument

from backend.models.users import User, UserType
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository


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

    async def reserve_sign_in_attempt(self, user: User, *, max_failures: int,
                                      now: datetime) -> int | None:
        """Count a sign-in attempt against the account before its password is checked; the
        new count, or None while the account is locked or `max_failures` attempts are already
        in flight or failed. A lock that has run out starts a fresh count (once, whoever
        gets here first)."""
        with driver_errors(self.collection_name):
            if user.locked_until is not None and user.locked_until <= now:
                await self._collection.update_one(
                    {"_id": user.id, "locked_until": user.locked_until},
                    {"$set": {"failed_login_attempts": 0, "locked_until": None}})
            reserved = await self._collection.find_one_and_update(
                {"_id": user.id, "locked_until": None,
                 "failed_login_attempts": {"$lt": max_failures}},
                {"$inc": {"failed_login_attempts": 1}},
                return_document=ReturnDocument.AFTER,
            )
        return None if reserved is None else int(reserved["failed_login_attempts"])

    async def lock_sign_in(self, user_id: ObjectId, *, until: datetime) -> bool:
        """Lock the account's sign-in until `until`; True only for the call that locked it."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"_id": user_id, "locked_until": None}, {"$set": {"locked_until": until}})
        return result.modified_count == 1

    async def clear_sign_in_failures(self, user_id: ObjectId) -> None:
        """A password proven right: the account's failure count starts again."""
        with driver_errors(self.collection_name):
            await self._collection.update_one(
                {"_id": user_id, "failed_login_attempts": {"$gt": 0}},
                {"$set": {"failed_login_attempts": 0}})

    async def record_sign_in(self, user_id: ObjectId, *, now: datetime) -> User | None:
        """A successful sign-in: the failure count starts again and the time is kept."""
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one_and_update(
                {"_id": user_id},
                {"$set": {"failed_login_attempts": 0, "locked_until": None,
                          "last_login_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        return None if raw is None else self._load(raw)
