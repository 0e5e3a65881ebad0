"""Leases in `locks`: the one implementation, used by the MT5 sync (a lease per account) and
by the migration runner (the `migrations` lease).

A lease is one document whose `_id` is its name. Taking it is a single upsert that matches
only a free lease (expired, or already this owner's); when another owner holds a live one, the
upsert collides with that `_id` (duplicate key) and the answer is "not yours". The expiry frees
the lease of a holder that died. Every time comes from the repository's clock, so tests move
time instead of waiting for it.

Renewing never re-creates a lease: a holder whose lease expired and was taken by another (even
one that has finished and released it since) has lost it, and must not write what it did.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from pymongo import ReturnDocument

from backend.errors import DuplicateEntity
from backend.models.locks import Lock
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository


def new_owner() -> str:
    """A holder id no other process or run shares: host, process and a random part."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


# A lock's `_id` is its name, a string; the base's by-ObjectId methods (get, update, delete)
# are not used on locks.
class LockRepository(Repository[Lock]):
    collection_name = "locks"
    model = Lock
    versioned = False
    timestamped = False

    async def acquire(self, name: str, *, owner: str, seconds: float) -> bool:
        """Take the lease for `seconds` if it is free or already `owner`'s (which extends it)."""
        now = self.clock()
        try:
            with driver_errors(self.collection_name):
                raw = await self._collection.find_one_and_update(
                    {"_id": name, "$or": [{"expires_at": {"$lte": now}}, {"owner": owner}]},
                    {"$set": {"owner": owner, "acquired_at": now,
                              "expires_at": now + timedelta(seconds=seconds)}},
                    upsert=True, return_document=ReturnDocument.AFTER,
                )
        except DuplicateEntity:
            return False
        return raw is not None and raw.get("owner") == owner

    async def renew(self, name: str, *, owner: str, seconds: float) -> bool:
        """Extend a lease `owner` still holds; False when it is gone or someone else's."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"_id": name, "owner": owner},
                {"$set": {"expires_at": self.clock() + timedelta(seconds=seconds)}})
        return result.matched_count == 1

    async def release(self, name: str, *, owner: str) -> bool:
        """Give the lease back; False when `owner` no longer held it (nothing is touched)."""
        with driver_errors(self.collection_name):
            result = await self._collection.delete_one({"_id": name, "owner": owner})
        return result.deleted_count == 1

    async def holder(self, name: str) -> Lock | None:
        """Who holds the lease (live or expired), for a message to whoever is kept waiting."""
        return await self._find_one({"_id": name})
