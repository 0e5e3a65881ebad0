"""A backup taken while four writers change the database restores into a database where the
integrity check finds nothing and every audited document has its audit trail.

The embedded server cannot read at one cluster time, so this exercises the sequential reading
(audited collections before `audit_log`, audit records of later changes left out). Between
the reads of two collections, the backup waits until every writer has finished another write,
so each collection is read at a different moment, as on a busy server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from backend.db import index_sync
from backend.models import STORED_MODELS, BackupConsistency, ProspectCreate, ProspectStage
from backend.models._base import OUTBOX_FIELD
from backend.models.users import KycStatus, UserType
from backend.ops import backup as ops
from backend.ops.verify import verify
from backend.services import Actor, Services
from backend.settings import Settings
from tests.factories import investment_create, user_create

AUDITED = sorted(name for name, model in STORED_MODELS.items() if model.audited)
S = ProspectStage
#: Round and round the pipeline, so the stage writer never runs out of moves.
NEXT_STAGE = {S.LEAD: S.CONTACTED, S.CONTACTED: S.QUALIFIED, S.QUALIFIED: S.PROPOSAL,
              S.PROPOSAL: S.NEGOTIATION, S.NEGOTIATION: S.LOST, S.LOST: S.LEAD}


@pytest.fixture
async def fresh(mongo_client: AsyncMongoClient[dict[str, Any]], db_name: str
                ) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """An empty database with the declared collections, validators and indexes."""
    name = f"{db_name}_restored"
    database = mongo_client.get_database(name, codec_options=mongo_client.codec_options)
    await index_sync.apply(database, await index_sync.plan(database))
    yield database
    await mongo_client.drop_database(name)


class Writers:
    """Four writers through the services; `wait_for_each` returns once each has written again."""

    def __init__(self, services: Services, admin: Actor, clients: list[Any],
                 prospects: list[Any]) -> None:
        self.services = services
        self.admin = admin
        self.clients = clients
        self.prospects = prospects
        self.counts = [0, 0, 0, 0]
        self.changed = asyncio.Condition()
        self.stop = asyncio.Event()
        self._n = itertools.count(1)

    async def _loop(self, index: int, write: Callable[[int], Awaitable[object]]) -> None:
        while not self.stop.is_set():
            await write(next(self._n))
            async with self.changed:
                self.counts[index] += 1
                self.changed.notify_all()

    async def wait_for_each(self) -> None:
        start = list(self.counts)
        async with self.changed:
            await self.changed.wait_for(
                lambda: all(now > then for now, then in zip(self.counts, start, strict=True)))

    async def new_prospect(self, n: int) -> None:
        await self.services.crm.create(
            ProspectCreate(name=f"Prospect {n}", email=f"prospect{n}@fidus.example",
                           assigned_to=self.admin.id), actor=self.admin)

    async def new_investment(self, n: int) -> None:
        client = self.clients[n % len(self.clients)]
        await self.services.investments.create(
            investment_create(client, principal_amount=Decimal("10000.00") + n,
                              deposit_date=date(2026, 1, 5)), actor=self.admin)

    async def new_client(self, n: int) -> None:
        user = await self.services.users.create_user(
            user_create(email=f"writer{n}@fidus.example", username=f"writer{n}"),
            actor=self.admin)
        await self.services.users.set_kyc(user.id, KycStatus.APPROVED,  # type: ignore[arg-type]
                                          actor=self.admin, reason="documents checked")

    async def move_prospect(self, n: int) -> None:
        prospect = self.prospects[n % len(self.prospects)]
        current = await self.services.crm.repo.get(prospect.id)
        stage = NEXT_STAGE[current.stage]
        await self.services.crm.move(prospect.id, stage, actor=self.admin,
                                     reason="no reply" if stage is ProspectStage.LOST else None)

    def run(self) -> list[asyncio.Task[None]]:
        return [asyncio.ensure_future(self._loop(i, write)) for i, write in enumerate(
            (self.new_prospect, self.new_investment, self.new_client, self.move_prospect))]


async def _setup(services: Services) -> Writers:
    admin_user = await services.users.create_user(user_create(user_type=UserType.ADMIN),
                                                  actor=Actor.system(),
                                                  kyc_status=KycStatus.APPROVED)
    admin = Actor.user(admin_user.id, "admin")
    clients = [await services.users.create_user(user_create(), actor=admin,
                                                kyc_status=KycStatus.APPROVED)
               for _ in range(3)]
    prospects = [await services.crm.create(
        ProspectCreate(name=f"Lead {n}", email=f"lead{n}@fidus.example"), actor=admin)
        for n in range(6)]
    return Writers(services, admin, clients, prospects)


async def audit_coverage_problems(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """Every audited document has its create record and no pending outbox; every record of a
    document names one that exists, at a version it has reached."""
    problems: list[str] = []
    documents: dict[Any, tuple[str, dict[str, Any]]] = {}
    for name in AUDITED:
        async for doc in db[name].find({}):
            documents[doc["_id"]] = (name, doc)
            if doc.get(OUTBOX_FIELD):
                problems.append(f"{name} {doc['_id']} still carries {len(doc[OUTBOX_FIELD])} "
                                "outbox record(s)")
    created: set[Any] = set()
    async for record in db["audit_log"].find({"after._id": {"$exists": True}}):
        target = record["after"]["_id"]
        if target not in documents:
            problems.append(f"audit record {record['_id']} ({record['action']}) of a missing "
                            f"document {target}")
            continue
        version = documents[target][1].get("version")
        if version is not None and record["after"].get("version", 0) > version:
            problems.append(f"audit record {record['_id']} ({record['action']}) describes "
                            f"version {record['after']['version']} of a document at {version}")
        if record.get("before") is None:
            created.add(target)
    problems += [f"{name} {doc_id} has no create record"
                 for doc_id, (name, _) in documents.items() if doc_id not in created]
    return problems


def test_without_snapshots_referrers_are_read_before_what_they_refer_to() -> None:
    present = ["users", "audit_log", "kyc_files.chunks", "kyc_files.files", "documents",
               "sessions", "mt5_deals", "investments", "mt5_accounts", "crm_prospects",
               "admin_google_sessions", "locks", "fs.files"]
    assert ops.read_order(present) == [
        "fs.files", "locks", "mt5_deals", "sessions",
        "admin_google_sessions", "crm_prospects", "documents",
        "kyc_files.files", "kyc_files.chunks",
        "investments", "mt5_accounts", "users", "audit_log"]


def test_the_rule_that_leaves_out_audit_records_of_later_changes() -> None:
    started = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    state = ops.DumpedState(started_at=started)
    state.read_started = {"users": started + timedelta(seconds=5),
                          "admin_google_sessions": started + timedelta(seconds=1)}
    admin, client, session = ObjectId(), ObjectId(), ObjectId()
    state.note("users", {"_id": admin, "version": 1})
    state.note("users", {"_id": client, "version": 3,
                         OUTBOX_FIELD: [{"_id": "carried", "after": {"_id": client}}]})
    state.note("admin_google_sessions", {"_id": session})

    def record(at_seconds: float, *, doc: Any = None, version: int | None = None,
               before: bool = False, actor: Any = admin, id_: Any = None) -> dict[str, Any]:
        after = None if doc is None else {"_id": doc, **({} if version is None
                                                        else {"version": version})}
        return {"_id": id_ or ObjectId(), "actor_id": actor,
                "at": started + timedelta(seconds=at_seconds), "after": after,
                "before": {"_id": doc} if before else None}

    later = state.later_than_dump
    assert not later(record(-3600, doc=client, version=3, before=True))
    assert later(record(30, doc=client, version=4, before=True))  # a version not backed up
    assert not later(record(30, doc=client, version=9, id_="carried"))  # rides in the file
    assert later(record(30, doc=ObjectId(), version=1))  # created after its collection's read
    assert not later(record(-3600, doc=ObjectId(), version=1))  # a deleted document's history
    assert later(record(30, actor=ObjectId()))  # by a user created after `users` was read
    assert not later(record(-3600, actor=ObjectId()))
    assert not later(record(30, doc=session))  # an unversioned create of a backed-up session
    assert later(record(30, doc=session, before=True))  # an update after the session was read
    assert not later(record(0.5, doc=session, before=True))


async def test_a_backup_under_four_writers_restores_clean(
        synced_db: AsyncDatabase[dict[str, Any]], fresh: AsyncDatabase[dict[str, Any]],
        settings: Settings, tmp_path: Path) -> None:
    services = Services(synced_db, settings)
    writers = await _setup(services)
    tasks = writers.run()
    reads: list[str] = []

    async def between_collections(entry: ops.CollectionEntry) -> None:
        reads.append(entry.name)
        await writers.wait_for_each()

    try:
        await writers.wait_for_each()
        before = list(writers.counts)
        manifest = await ops.backup(synced_db, tmp_path / "busy.jsonl.gz",
                                    after_collection=between_collections)
        during = [now - then for now, then in zip(writers.counts, before, strict=True)]
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)

    assert manifest.consistency is BackupConsistency.SEQUENTIAL
    assert reads[-4:] == ["investments", "mt5_accounts", "users", "audit_log"]
    assert all(count >= len(reads) for count in during), during
    # Users created after `users` was read had their records relayed before `audit_log` was
    # read: those records describe changes the file does not hold.
    assert manifest.audit_records_left_out >= 1

    report = await ops.restore(fresh, manifest.path, services=Services(fresh, settings))
    assert report.restored["crm_prospects"] == manifest.entry("crm_prospects").count

    failed = [(r.name, r.failed, r.sample_ids) for r in await verify(fresh) if not r.ok]
    assert failed == []
    assert await audit_coverage_problems(fresh) == []
    # The live database, once the writers stopped, is whole too: the check itself is sound.
    assert await audit_coverage_problems(synced_db) == []


@pytest.mark.real_mongodb
async def test_on_a_replica_set_every_collection_is_read_at_one_cluster_time(
        synced_db: AsyncDatabase[dict[str, Any]], fresh: AsyncDatabase[dict[str, Any]],
        settings: Settings, tmp_path: Path) -> None:
    if not await ops.reads_at_one_time(synced_db):
        pytest.skip("FIDUS_TEST_MONGODB_URI is a standalone server: no snapshot reads")
    services = Services(synced_db, settings)
    writers = await _setup(services)
    tasks = writers.run()

    async def between_collections(entry: ops.CollectionEntry) -> None:
        await writers.wait_for_each()

    try:
        await writers.wait_for_each()
        manifest = await ops.backup(synced_db, tmp_path / "snapshot.jsonl.gz",
                                    after_collection=between_collections)
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)

    assert manifest.consistency is BackupConsistency.SNAPSHOT
    assert manifest.cluster_time is not None
    assert ops.verify_file(manifest.path).cluster_time == manifest.cluster_time
    await ops.restore(fresh, manifest.path, services=Services(fresh, settings))
    assert [r.name for r in await verify(fresh) if not r.ok] == []
    assert await audit_coverage_problems(fresh) == []
