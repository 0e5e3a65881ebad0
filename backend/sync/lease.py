"""Per-account leases in `locks`: two workers never sync the same account at once.

A lease is one document whose `_id` is its name. Taking it is a single upsert that matches
only a free lease (expired, or already ours); when another owner holds a live one, the upsert
collides with that `_id` (duplicate key) and the answer is "not yours". The expiry frees the
lease of a worker that died mid-sync.

Renewing never re-creates a lease: a worker whose lease expired and was taken by another (even
one that has finished and released it) has lost it, and must not write what it fetched.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from backend.errors import DuplicateEntity
from backend.repositories._errors import driver_errors
from backend.repositories.base import Clock, utcnow

COLLECTION = "locks"


def worker_id() -> str:
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def account_lease_name(account_id: Any) -> str:
    return f"sync:mt5:{str(account_id).lower()}"


class Leases:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, owner: str | None = None,
                 clock: Clock = utcnow) -> None:
        self.collection = db[COLLECTION]
        self.owner = owner or worker_id()
        self.clock = clock

    async def acquire(self, name: str, *, seconds: float) -> bool:
        now = self.clock()
        try:
            with driver_errors(COLLECTION):
                raw = await self.collection.find_one_and_update(
                    {"_id": name, "$or": [{"expires_at": {"$lte": now}}, {"owner": self.owner}]},
                    {"$set": {"owner": self.owner, "acquired_at": now,
                              "expires_at": now + timedelta(seconds=seconds)}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
        except DuplicateEntity:
            return False
        return raw is not None and raw.get("owner") == self.owner

    async def renew(self, name: str, *, seconds: float) -> bool:
        """Extend a lease this owner still holds; False when it is gone or someone else's."""
        with driver_errors(COLLECTION):
            result = await self.collection.update_one(
                {"_id": name, "owner": self.owner},
                {"$set": {"expires_at": self.clock() + timedelta(seconds=seconds)}})
        return result.matched_count == 1

    async def release(self, name: str) -> None:
        with driver_errors(COLLECTION):
            await self.collection.delete_one({"_id": name, "owner": self.owner})
