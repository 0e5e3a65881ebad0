"""Per-account leases: two workers never sync the same account at once.

The lease itself (take, renew, release, expiry) is `backend.repositories.locks`; this module
names an account's lease and binds one worker's owner id to its calls.
"""

from __future__ import annotations

from typing import Any

from backend.db.types import Database
from backend.repositories.base import Clock, utcnow
from backend.repositories.locks import LockRepository, new_owner


def account_lease_name(account_id: Any) -> str:
    return f"sync:mt5:{str(account_id).lower()}"


class Leases:
    """One worker's leases: every call is made as `owner`."""

    def __init__(self, db: Database, *, owner: str | None = None,
                 clock: Clock = utcnow) -> None:
        self.locks = LockRepository(db, clock=clock)
        self.owner = owner or new_owner()

    async def acquire(self, name: str, *, seconds: float) -> bool:
        return await self.locks.acquire(name, owner=self.owner, seconds=seconds)

    async def renew(self, name: str, *, seconds: float) -> bool:
        """Extend a lease this worker still holds; False when it is gone or someone else's."""
        return await self.locks.renew(name, owner=self.owner, seconds=seconds)

    async def release(self, name: str) -> None:
        await self.locks.release(name, owner=self.owner)
