"""verify's audit coverage and half-done operations, and what `verify --fix` finishes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.errors import DatabaseUnavailable
from backend.models import STORED_MODELS
from backend.models.crm_prospects import CrmProspect, ProspectCreate, ProspectStage
from backend.models.users import UserType
from backend.ops import validate
from backend.ops import verify as ops
from backend.ops._audit import AUDITED_COLLECTIONS
from backend.repositories.base import utcnow
from backend.services import Services
from backend.services.audit import Actor
from backend.settings import Settings
from tests import ops_factories as f
from tests.factories import user_create


def _by_name(results: list[ops.CheckResult]) -> dict[str, ops.CheckResult]:
    return {r.name: r for r in results}


def _failed(results: list[ops.CheckResult]) -> dict[str, list[str]]:
    return {r.name: r.sample_ids for r in results if not r.ok}


@pytest.fixture
async def services(synced_db: AsyncDatabase[dict[str, Any]], settings: Settings) -> Services:
    return Services(synced_db, settings)


@pytest.fixture
async def admin(services: Services) -> Actor:
    """An actor who exists, so the audit-actor check has nothing to say."""
    user = await services.users.create_user(user_create(user_type=UserType.ADMIN),
                                            actor=Actor.system())
    return Actor.user(user.id, "admin")


async def _won(services: Services, admin: Actor, n: int = 1) -> CrmProspect:
    prospect = await services.crm.create(
        ProspectCreate(name=f"Mary {n}", email=f"mary{n}@fidus.example"), actor=admin)
    for stage in (ProspectStage.CONTACTED, ProspectStage.QUALIFIED, ProspectStage.PROPOSAL,
                  ProspectStage.NEGOTIATION, ProspectStage.WON):
        prospect = await services.crm.move(prospect.id, stage, actor=admin)  # type: ignore[arg-type]
    return prospect


def test_every_audited_collection_is_checked() -> None:
    audited = {name for name, model in STORED_MODELS.items() if model.audited}
    assert {a.collection for a in AUDITED_COLLECTIONS} == audited


async def test_documents_through_the_services_are_covered_and_raw_ones_are_not(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services, admin: Actor) -> None:
    user = await services.users.create_user(user_create(), actor=admin)
    await _won(services, admin)
    assert _failed(await ops.verify(synced_db)) == {}

    raw = f.user(7)
    await synced_db["users"].insert_one(raw)
    copied = await synced_db["audit_log"].find_one({"entity_id": str(user.id)})
    assert copied is not None
    await synced_db["audit_log"].insert_one({**copied, "_id": ObjectId()})  # a second creation
    ghost = ObjectId()
    await synced_db["audit_log"].insert_one(
        {**copied, "_id": ObjectId(), "entity_id": str(ghost), "action": "user.update"})

    failed = _failed(await ops.verify(synced_db))
    assert sorted(failed["users: one creation record each"]) == sorted([str(raw["_id"]),
                                                                       str(user.id)])
    assert len(failed["audit_log entities exist (or were removed on record)"]) == 1
    # A recorded removal explains the records of a user that is gone.
    await synced_db["audit_log"].insert_one(
        {**copied, "_id": ObjectId(), "entity_id": str(ghost), "action": "user.delete"})
    assert "audit_log entities exist (or were removed on record)" not in _failed(
        await ops.verify(synced_db))


async def test_a_legacy_user_enters_the_audit_trail_when_migrated(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Any) -> None:
    legacy = f.legacy_user(1, email="legacy.user1@fidus.example")
    await db["users"].insert_one(legacy)  # as the legacy database holds it: no validator
    assert _failed(await ops.verify(db))["users: one creation record each"] == [
        str(legacy["_id"])]

    report = await validate.fix_legacy_users(db, backup_directory=tmp_path)
    assert report.fixed == 1
    (imported,) = [r async for r in db["audit_log"].find({"action": "user.import"})]
    assert imported["entity_id"] == str(legacy["_id"]) and imported["actor_type"] == "script"
    assert imported["before"]["type"] == "client" and imported["after"]["user_type"] == "client"
    assert "users: one creation record each" not in _failed(await ops.verify(db))


async def test_an_expired_google_session_leaves_explained_records(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services, admin: Actor) -> None:
    now = utcnow()
    records = [await services.audit.record(
        admin, action="admin.google_sign_in", entity_type="admin_google_session",
        entity_id=str(session_id), after={"_id": session_id, "token_expires_at": expires})
        for expires, session_id in ((now - timedelta(hours=1), ObjectId()),
                                    (now + timedelta(hours=1), ObjectId()))]
    # The expired session's record is explained; the live one names a session that is gone.
    assert _failed(await ops.verify(synced_db)) == {
        "audit_log entities exist (or were removed on record)": [str(records[1].id)]}


async def test_outbox_entries_left_behind_fail_until_fixed(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services,
        settings: Settings, admin: Actor) -> None:
    user = await services.users.create_user(user_create(), actor=admin)
    # A change whose relay failed, two minutes ago.
    await services.audit.update(services.repos.users, user, {"first_name": "Grace"},
                                actor=admin, action="user.update", entity_type="user",
                                deliver=False)
    later = utcnow() + timedelta(minutes=2)
    failed = _failed(await ops.verify(synced_db, now=later))
    assert failed == {"audit outboxes: nothing older than a minute": [f"users:{user.id}"]}

    repairs = await ops.repair(synced_db, settings, now=later)
    assert repairs.relayed == 1
    assert _failed(await ops.verify(synced_db, now=later)) == {}
    actions = [r["action"] async for r in synced_db["audit_log"].find({"entity_id": str(user.id)})]
    assert sorted(actions) == ["user.create", "user.update"]


async def test_a_half_done_conversion_fails_until_fixed(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services,
        settings: Settings, admin: Actor) -> None:
    prospect = await _won(services, admin)

    async def stopped(*args: Any, **kwargs: Any) -> CrmProspect:
        raise DatabaseUnavailable("the database is unavailable")

    services.crm.finish_conversion = stopped  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnavailable):
        await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                                   actor=admin)
    failed = _failed(await ops.verify(synced_db))
    assert failed == {"users.source_prospect_id: conversions finished": [str(prospect.id)]}

    repairs = await ops.repair(synced_db, settings)
    assert repairs.conversions_finished == 1
    assert _failed(await ops.verify(synced_db)) == {}
    client = await synced_db["users"].find_one({"source_prospect_id": prospect.id})
    stored = await synced_db["crm_prospects"].find_one({"_id": prospect.id})
    assert client is not None and stored is not None
    assert stored["converted_client_id"] == client["_id"]
    convert = await synced_db["audit_log"].find_one({"entity_id": str(prospect.id),
                                                     "action": "prospect.convert"})
    assert convert is not None and convert["actor_type"] == "script"


async def test_a_claim_without_its_client_is_released_after_a_minute(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services,
        settings: Settings, admin: Actor) -> None:
    prospect = await _won(services, admin)
    await services.repos.prospects.claim_conversion(prospect.id, client_id=ObjectId(),  # type: ignore[arg-type]
                                                    now=utcnow())
    assert _failed(await ops.verify(synced_db)) == {}  # a conversion may be under way
    later = utcnow() + timedelta(minutes=2)
    assert _failed(await ops.verify(synced_db, now=later)) == {
        "crm_prospects: no conversion claim left behind": [str(prospect.id)]}

    repairs = await ops.repair(synced_db, settings, now=later)
    assert repairs.claims_released == 1
    assert _failed(await ops.verify(synced_db, now=later)) == {}
    conversion = await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                                            actor=admin)
    assert conversion.created


async def test_cli_fix_reports_what_it_finished(
        synced_db: AsyncDatabase[dict[str, Any]], services: Services, settings: Settings,
        capsys: pytest.CaptureFixture[str], admin: Actor) -> None:
    user = await services.users.create_user(user_create(), actor=admin)
    await services.audit.update(services.repos.users, user, {"first_name": "Grace"},
                                actor=admin, action="user.update", entity_type="user",
                                deliver=False)
    # Move the outbox entry's time back: it was written two minutes ago.
    await synced_db["users"].update_one(
        {"_id": user.id}, {"$set": {"_outbox.0.at": utcnow() - timedelta(minutes=2)}})
    assert ops.main(["--json"], settings=settings) == 1
    assert ops.main(["--fix", "--json"], settings=settings) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["fixed"]["relayed"] == 1
    assert all(check["failed"] == 0 for check in out["checks"])
    run = await synced_db["audit_log"].find_one({"action": "data_script.verify_fix"})
    assert run is not None and run["after"]["relayed"] == 1
