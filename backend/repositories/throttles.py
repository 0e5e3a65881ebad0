"""Throttle counters in MongoDB, so every API process counts into the same window.

A counter is a fixed window: the first hit opens it (count 1, ending `window` later), later hits
in it add one, and a hit after it ended opens a new one. A counter that reaches its limit can be
held at it until a later time (`hold_until`), which is how a lock outlasts its window. Every
step is one atomic single-document operation, so concurrent processes never lose a hit; the TTL
index only tidies up, the logic compares `expires_at` itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend.models.throttles import ThrottleCounter
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository

#: A concurrent twin can make an insert collide once; a few rounds always settle it.
_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class Window:
    count: int
    expires_at: datetime


def throttle_key(kind: str, *parts: str) -> str:
    """A counter's id: its kind, then the parts (addresses, ids) reduced to the key's alphabet."""
    cleaned = [re.sub(r"[^a-z0-9_.:-]", "_", part.lower())[:120] or "_" for part in parts]
    return f"{kind}:{':'.join(cleaned)}"


class ThrottleRepository(Repository[ThrottleCounter]):
    collection_name = "throttles"
    model = ThrottleCounter
    versioned = False
    timestamped = False

    async def hit(self, key: str, *, window: timedelta, now: datetime) -> Window:
        """Count one in the live window (opening one if there is none) and return it."""
        counted = await self._count_in_window(key, now=now, limit=None, window=window)
        if counted is None:  # only if inserts kept colliding with deletes, round after round
            raise RuntimeError(f"the throttle counter {key} did not settle")
        return counted

    async def reserve(self, key: str, *, limit: int, window: timedelta, now: datetime
                      ) -> Window | None:
        """Count one only while the live window is below `limit`; None when it is full.

        Taken before the outcome is known (a password check), so parallel attempts cannot
        all slip in under the limit.
        """
        return await self._count_in_window(key, now=now, limit=limit, window=window)

    async def _count_in_window(self, key: str, *, now: datetime, limit: int | None,
                               window: timedelta) -> Window | None:
        live: dict[str, object] = {"_id": key, "expires_at": {"$gt": now}}
        if limit is not None:
            live["count"] = {"$lt": limit}
        with driver_errors(self.collection_name):
            for _ in range(_ROUNDS):
                raw = await self._collection.find_one_and_update(
                    live, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER)
                if raw is not None:
                    return Window(int(raw["count"]), raw["expires_at"])
                fresh = {"count": 1, "expires_at": now + window}
                reopened = await self._collection.update_one(
                    {"_id": key, "expires_at": {"$lte": now}}, {"$set": fresh})
                if reopened.modified_count:
                    return Window(1, now + window)
                try:
                    await self._collection.insert_one({"_id": key, **fresh})
                except DuplicateKeyError:
                    # A live window exists: it is full, or a twin opened it just now.
                    current = await self._collection.find_one({"_id": key})
                    if (limit is not None and current is not None
                            and current["expires_at"] > now and current["count"] >= limit):
                        return None
                    continue
                return Window(1, now + window)
        return None

    async def current(self, key: str, *, now: datetime) -> Window | None:
        """The live window of a counter, or None when it has none."""
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one({"_id": key, "expires_at": {"$gt": now}})
        return None if raw is None else Window(int(raw["count"]), raw["expires_at"])

    async def hold_until(self, key: str, *, until: datetime) -> None:
        """Keep the counter's window (and so its count) alive until `until` at least."""
        with driver_errors(self.collection_name):
            await self._collection.update_one(
                {"_id": key, "expires_at": {"$lt": until}}, {"$set": {"expires_at": until}})

    async def clear(self, key: str) -> None:
        with driver_errors(self.collection_name):
            await self._collection.delete_one({"_id": key})

    async def clear_prefix(self, prefix: str) -> int:
        """Remove every counter whose id starts with `prefix` (an admin unlock)."""
        with driver_errors(self.collection_name):
            result = await self._collection.delete_many(
                {"_id": {"$regex": "^" + re.escape(prefix)}})
        return result.deleted_count
