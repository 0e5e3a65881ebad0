"""The one lease implementation (`locks`), on a clock the tests move."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from backend.errors import DocumentInvalid
from backend.repositories.base import utcnow
from backend.repositories.locks import LockRepository, new_owner
from tests.support import ManualClock

Db = AsyncDatabase[dict[str, Any]]
NAME = "sync:mt5:0123456789abcdef01234567"
T0 = utcnow()


@pytest.fixture
def clock() -> ManualClock:
    # Now, not a fixed date: the TTL index deletes leases that expired a day ago.
    return ManualClock(T0)


@pytest.fixture
def locks(synced_db: Db, clock: ManualClock) -> LockRepository:
    return LockRepository(synced_db, clock=clock.now)


async def test_a_free_lease_is_taken_for_the_time_asked(synced_db: Db,
                                                        locks: LockRepository) -> None:
    assert await locks.acquire(NAME, owner="a:1:x", seconds=90)

    stored = await synced_db["locks"].find_one({"_id": NAME})
    assert stored == {"_id": NAME, "owner": "a:1:x", "acquired_at": T0,
                      "expires_at": T0 + timedelta(seconds=90)}
    holder = await locks.holder(NAME)
    assert holder is not None and holder.owner == "a:1:x"


async def test_a_live_lease_refuses_another_owner_and_extends_for_its_own(
        locks: LockRepository, clock: ManualClock) -> None:
    assert await locks.acquire(NAME, owner="a:1:x", seconds=60)
    await clock.advance(30)

    assert not await locks.acquire(NAME, owner="b:2:y", seconds=60)
    assert await locks.acquire(NAME, owner="a:1:x", seconds=60)

    holder = await locks.holder(NAME)
    assert holder is not None and holder.owner == "a:1:x"
    assert holder.expires_at == T0 + timedelta(seconds=90)


async def test_an_expired_lease_is_free_from_the_moment_it_expires(
        locks: LockRepository, clock: ManualClock) -> None:
    assert await locks.acquire(NAME, owner="dead:1:x", seconds=60)
    await clock.advance(59.999)
    assert not await locks.acquire(NAME, owner="b:2:y", seconds=60)
    await clock.advance(0.001)

    assert await locks.acquire(NAME, owner="b:2:y", seconds=60)
    holder = await locks.holder(NAME)
    assert holder is not None and holder.owner == "b:2:y" and holder.acquired_at == clock.now()


async def test_only_the_holder_renews_and_a_lost_lease_is_never_recreated(
        synced_db: Db, locks: LockRepository, clock: ManualClock) -> None:
    assert await locks.acquire(NAME, owner="a:1:x", seconds=60)
    assert not await locks.renew(NAME, owner="b:2:y", seconds=600)
    holder = await locks.holder(NAME)
    assert holder is not None and holder.expires_at == T0 + timedelta(seconds=60)

    await clock.advance(10)
    assert await locks.renew(NAME, owner="a:1:x", seconds=60)
    holder = await locks.holder(NAME)
    assert holder is not None and holder.expires_at == T0 + timedelta(seconds=70)

    await clock.advance(61)  # expired; another owner takes it, then lets it go
    assert await locks.acquire(NAME, owner="b:2:y", seconds=60)
    assert not await locks.renew(NAME, owner="a:1:x", seconds=60)
    assert await locks.release(NAME, owner="b:2:y")
    assert not await locks.renew(NAME, owner="a:1:x", seconds=60)
    assert await synced_db["locks"].count_documents({}) == 0


async def test_only_the_holder_releases(synced_db: Db, locks: LockRepository) -> None:
    assert await locks.acquire(NAME, owner="a:1:x", seconds=60)

    assert not await locks.release(NAME, owner="b:2:y")
    assert await synced_db["locks"].count_documents({"_id": NAME}) == 1
    assert await locks.release(NAME, owner="a:1:x")
    assert await locks.holder(NAME) is None
    assert not await locks.release(NAME, owner="a:1:x")


async def test_a_lease_name_the_schema_refuses_is_an_error_not_a_refusal(
        locks: LockRepository) -> None:
    with pytest.raises(DocumentInvalid):
        await locks.acquire("Not A Lease Name", owner="a:1:x", seconds=60)


def test_owner_ids_name_the_host_and_process_and_never_repeat() -> None:
    first, second = new_owner(), new_owner()
    assert first != second
    assert first.rsplit(":", 1)[0] == second.rsplit(":", 1)[0]
