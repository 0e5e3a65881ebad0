"""Migrations: ordered, recorded with checksums, reversible, and one run at a time."""

from __future__ import annotations

import asyncio
import json
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import migrations as ops
from backend.settings import Settings
from tests import ops_factories as f
from tests.support import WRITE_COMMANDS, CommandRecorder, ManualClock

STEP = """
async def up(db):
    await db["journal"].insert_one({{"event": "up {tag}"}})

async def down(db):
    await db["journal"].insert_one({{"event": "down {tag}"}})
"""


def write(directory: Path, version: str, name: str, tag: str) -> Path:
    path = directory / f"m{version}_{name}.py"
    path.write_text(textwrap.dedent(STEP.format(tag=tag)))
    return path


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    write(directory, "20261101000000", "second", "b")
    write(directory, "20261001000000", "first", "a")
    return directory


async def _journal(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    return [d["event"] async for d in db["journal"].find({}, sort=[("_id", 1)])]


async def test_pending_migrations_run_in_order_and_are_recorded(
        db: AsyncDatabase[dict[str, Any]], migrations_dir: Path) -> None:
    report = await ops.migrate_up(db, directory=migrations_dir)

    assert [v for v, _, _ in report.done] == ["20261001000000", "20261101000000"]
    assert await _journal(db) == ["up a", "up b"]
    record = await db["migrations"].find_one({"version": "20261001000000"})
    assert record is not None and record["name"] == "first" and len(record["checksum"]) == 64
    assert record["duration_ms"] >= 0 and record["applied_at"].tzinfo is not None
    assert (await ops.migrate_up(db, directory=migrations_dir)).done == []
    assert await _journal(db) == ["up a", "up b"]
    assert await db["locks"].count_documents({}) == 0


async def test_down_reverts_newest_first_down_to_the_version(
        db: AsyncDatabase[dict[str, Any]], migrations_dir: Path) -> None:
    await ops.migrate_up(db, directory=migrations_dir)
    report = await ops.migrate_down(db, "20261001000000", directory=migrations_dir)
    assert [v for v, _, _ in report.done] == ["20261101000000", "20261001000000"]
    assert await _journal(db) == ["up a", "up b", "down b", "down a"]
    assert await db["migrations"].count_documents({}) == 0


async def test_a_changed_applied_file_is_refused(db: AsyncDatabase[dict[str, Any]],
                                                 migrations_dir: Path) -> None:
    await ops.migrate_up(db, directory=migrations_dir)
    write(migrations_dir, "20261001000000", "first", "a-edited")
    write(migrations_dir, "20261201000000", "third", "c")
    with pytest.raises(ops.MigrationChanged, match="20261001000000_first"):
        await ops.migrate_up(db, directory=migrations_dir)
    assert await _journal(db) == ["up a", "up b"]  # the third did not run either


def runs_on(clock: ManualClock) -> dict[str, Any]:
    return {"clock": clock.now, "sleep": clock.sleep}


async def test_two_concurrent_runs_do_not_interleave(db: AsyncDatabase[dict[str, Any]],
                                                     tmp_path: Path) -> None:
    directory = tmp_path / "two"
    directory.mkdir()
    write(directory, "20261001000000", "one", "1")
    write(directory, "20261002000000", "two", "2")
    clock = ManualClock(f.T0)

    runs = [asyncio.create_task(ops.migrate_up(db, directory=directory, lock_wait=10,
                                               **runs_on(clock))) for _ in range(2)]
    # The clock stands still: whichever run waits for the lock waits until the other is done.
    done, waiting = await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
    assert any(len(run.result().done) == 2 for run in done)
    for run in waiting:
        await clock.settled(run)
        await clock.advance(1)  # its next look at the lock
    first, second = [run.result() for run in runs]
    assert sorted(len(r.done) for r in (first, second)) == [0, 2]
    assert await _journal(db) == ["up 1", "up 2"]

    async with ops.migration_lock(db, owner="other-host:1"):
        with pytest.raises(ops.MigrationLocked, match="other-host:1"):
            await ops.migrate_up(db, directory=directory, lock_wait=0)


async def test_a_run_waits_for_the_lock_as_long_as_it_was_told_and_no_longer(
        db: AsyncDatabase[dict[str, Any]], migrations_dir: Path) -> None:
    clock = ManualClock(f.T0)
    async with ops.migration_lock(db, owner="other-host:1", **runs_on(clock)):
        run = asyncio.create_task(ops.migrate_up(db, directory=migrations_dir, lock_wait=30,
                                                 **runs_on(clock)))
        await clock.settled(run)
        await clock.advance(29.5)
        assert not run.done(), "still inside its 30 s"
        await clock.advance(1)
        with pytest.raises(ops.MigrationLocked, match="other-host:1"):
            await run
    assert await _journal(db) == []


async def test_an_expired_lease_is_taken_over(db: AsyncDatabase[dict[str, Any]],
                                              migrations_dir: Path) -> None:
    await db["locks"].insert_one({"_id": "migrations", "owner": "dead:1",
                                  "acquired_at": f.T0, "expires_at": f.T0})
    report = await ops.migrate_up(db, directory=migrations_dir)
    assert len(report.done) == 2


async def test_the_shipped_gain_backfill_migration(db: AsyncDatabase[dict[str, Any]]) -> None:
    client, admin = ObjectId(), ObjectId()
    legacy = f.investment(client, admin, n=1, amount="25000.00")
    del legacy["gain_amount"], legacy["return_pct"]
    synced = f.investment(client, admin, n=2, gain_amount=Decimal128("5.00"),
                          return_pct=Decimal128("0.0200"), performance_updated_at=f.T0)
    await db["investments"].insert_many([legacy, synced])
    shipped = [m for m in ops.discover() if m.name == "backfill_investment_gain"]
    assert len(shipped) == 1
    up, down = shipped[0].load()

    await up(db)
    filled = await db["investments"].find_one({"_id": legacy["_id"]})
    assert filled is not None
    assert filled["gain_amount"].to_decimal() == Decimal("123.4567")
    assert filled["return_pct"].to_decimal() == Decimal("0.4938")
    untouched = await db["investments"].find_one({"_id": synced["_id"]})
    assert untouched == synced

    await down(db)
    reverted = await db["investments"].find_one({"_id": legacy["_id"]})
    assert reverted == legacy and "gain_amount" not in reverted  # absent again, not null
    assert await db["investments"].find_one({"_id": synced["_id"]}) == synced


async def test_the_gain_backfill_reverts_exactly_what_it_filled(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    client, admin = ObjectId(), ObjectId()
    missing = f.investment(client, admin, n=1)
    del missing["gain_amount"], missing["return_pct"]
    null = f.investment(client, admin, n=2, amount="1000.00")
    half = f.investment(client, admin, n=3, return_pct=Decimal128("9.9"))
    del half["gain_amount"]
    # The application creates investments with gain 0 and return 0 before their first sync.
    app_made = f.investment(client, admin, n=4, gain_amount=Decimal128("0"),
                            return_pct=Decimal128("0"))
    edited = f.investment(client, admin, n=5)
    docs = [missing, null, half, app_made, edited]
    await db["investments"].insert_many(docs)
    (shipped,) = [m for m in ops.discover() if m.name == "backfill_investment_gain"]
    up, down = shipped.load()

    await up(db)
    await up(db)  # rerun, as after a crash before the record: changes nothing more
    filled = await db["investments"].find_one({"_id": null["_id"]})
    assert filled is not None and filled["gain_amount"].to_decimal() == Decimal("123.4567")
    assert await db["investments"].find_one({"_id": app_made["_id"]}) == app_made
    # Edited after the backfill (version bumped): its figures are no longer the backfill's.
    await db["investments"].update_one(
        {"_id": edited["_id"]},
        {"$set": {"gain_amount": Decimal128("7.00"), "version": edited["version"] + 1}})

    await down(db)

    after = {d["_id"]: d async for d in db["investments"].find({})}
    for doc in (missing, null, half, app_made):
        assert after[doc["_id"]] == doc
    assert after[edited["_id"]]["gain_amount"] == Decimal128("7.00")
    assert await db["migration_state"].count_documents({}) == 0


async def test_cli_migrate_status_and_down(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                           migrations_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--dir", str(migrations_dir), "--json"]
    assert ops.main([*base, "--dry-run"], settings=settings) == 0
    assert len(json.loads(capsys.readouterr().out)["pending"]) == 2
    assert await _journal(db) == []

    assert ops.main(base, settings=settings) == 0
    assert len(json.loads(capsys.readouterr().out)["done"]) == 2

    assert ops.main([*base, "--down", "20261101000000"], settings=settings) == 0
    assert json.loads(capsys.readouterr().out)["done"][0]["version"] == "20261101000000"

    write(migrations_dir, "20261001000000", "first", "changed")
    assert ops.main(base, settings=settings) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "MIGRATION_CHANGED"


SLOW_COUNTED = """
from tests.support import ManualClock

async def up(db):
    await db["counter"].update_one({"_id": 1}, {"$inc": {"n": 1}}, upsert=True)
    await ManualClock.current().sleep(1200)  # twice the lease

async def down(db):
    pass
"""


async def test_a_long_step_keeps_its_lease_so_a_second_run_cannot_run_it_again(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "m20990101000000_slow.py").write_text(SLOW_COUNTED)
    assert ops.LEASE_SECONDS == 600  # the step outlives the lease twice
    clock = ManualClock(f.T0)
    with clock.in_use():
        running = asyncio.create_task(ops.migrate_up(db, directory=tmp_path, **runs_on(clock)))
        await clock.settled(running)  # inside its step
        waiting = asyncio.create_task(ops.migrate_up(db, directory=tmp_path, lock_wait=3600,
                                                     **runs_on(clock)))
        await clock.settled(waiting)  # refused the lock, looking again later
        for _ in range(6):  # the step's 20 minutes, a heartbeat due every 200 s
            await clock.advance(ops.LEASE_SECONDS / 3)
        first = await running
        await clock.settled(waiting)
        await clock.advance(1)
        later = await waiting

    counter = await db["counter"].find_one({"_id": 1})
    assert counter is not None and counter["n"] == 1
    assert (len(first.done), len(later.done)) == (1, 0)
    assert await db["migrations"].count_documents({}) == 1


LOSES_LOCK = """
from tests.support import ManualClock

async def up(db):
    await db["journal"].insert_one({{"event": "up"}})
    await db["locks"].{action}
    await ManualClock.current().sleep(600)

async def down(db):
    pass
"""


@pytest.mark.parametrize("action", [
    'update_one({"_id": "migrations"}, {"$set": {"owner": "other-run:2"}})',
    'delete_one({"_id": "migrations"})',
])
async def test_a_run_that_lost_its_lock_does_not_record_the_step(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path, action: str) -> None:
    (tmp_path / "m20990101000000_lost.py").write_text(LOSES_LOCK.format(action=action))
    clock = ManualClock(f.T0)
    with clock.in_use():
        run = asyncio.create_task(ops.migrate_up(db, directory=tmp_path, **runs_on(clock)))
        await clock.settled(run)
        assert clock.sleeping == 2, "the step and the heartbeat"
        await clock.advance(ops.LEASE_SECONDS / 3)
        assert clock.sleeping == 1, "the heartbeat found the lease lost and stopped"
        await clock.advance(ops.LEASE_SECONDS)
        with pytest.raises(ops.MigrationLockLost, match="20990101000000_lost") as caught:
            await run

    assert "\n" not in str(caught.value)
    assert await db["migrations"].count_documents({}) == 0
    # Renewal never recreates a lease it lost, and never touches another run's.
    locks = [doc async for doc in db["locks"].find({})]
    assert [lock["owner"] for lock in locks] == (["other-run:2"] if "update" in action else [])


async def test_dry_runs_send_no_write_and_ignore_the_lock(
        db: AsyncDatabase[dict[str, Any]], migrations_dir: Path,
        command_recorder: CommandRecorder) -> None:
    await ops.migrate_up(db, directory=migrations_dir)
    write(migrations_dir, "20261201000000", "third", "c")
    await db["locks"].insert_one({"_id": "migrations", "owner": "busy-host:1",
                                  "acquired_at": f.T0, "expires_at": f.T0})
    command_recorder.reset()

    up = await ops.migrate_up(db, directory=migrations_dir, dry_run=True)
    down = await ops.migrate_down(db, "20261101000000", directory=migrations_dir, dry_run=True)

    assert up.pending == [("20261201000000", "third")] and up.done == []
    assert down.pending == [("20261101000000", "second")] and down.done == []
    sent = set(command_recorder.names())
    assert not sent & (WRITE_COMMANDS | {"create", "createIndexes", "drop"}), sent
    lock = await db["locks"].find_one({"_id": "migrations"})
    assert lock is not None and lock["owner"] == "busy-host:1"
    assert await _journal(db) == ["up a", "up b"]
