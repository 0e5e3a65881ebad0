"""The shipped migration that moves legacy investments into the contract lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import migrations as ops
from backend.ops.verify_money import money_checks
from backend.repositories.registry import Repositories
from backend.security.crypto import FieldCipher
from backend.services.audit import AuditTrail
from backend.settings import Settings
from tests import ops_factories as f

Db = AsyncDatabase[dict[str, Any]]


def _shipped() -> Any:
    [migration] = [m for m in ops.discover() if m.name == "contract_lifecycle"]
    return migration.load()


async def _statuses(db: Db) -> dict[str, str]:
    return {doc["investment_id"]: doc["status"] async for doc in db["investments"].find({})}


async def test_legacy_investments_take_their_state_schedule_and_subscription(
        synced_db: Db, settings: Settings) -> None:
    client, admin = ObjectId(), ObjectId()
    old = f.investment(client, admin, n=1, deposit=datetime(2025, 1, 31, tzinfo=UTC))
    young = f.investment(client, admin, n=2, deposit=datetime(2026, 10, 20, tzinfo=UTC))
    redeemed = f.investment(client, admin, n=3, deposit=datetime(2024, 3, 1, tzinfo=UTC),
                            status="redeemed", redeemed_at=datetime(2025, 5, 2, tzinfo=UTC))
    pending = f.investment(client, admin, n=4, status="pending")
    cancelled = f.investment(client, admin, n=5, status="cancelled")
    await synced_db["investments"].insert_many([old, young, redeemed, pending, cancelled])
    up, down = _shipped()

    await up(synced_db)
    assert await _statuses(synced_db) == {
        "INV-CORE-2025-000001": "matured", "INV-CORE-2025-000002": "incubating",
        "INV-CORE-2025-000003": "closed", "INV-CORE-2025-000004": "pending",
        "INV-CORE-2025-000005": "cancelled"}
    migrated = await synced_db["investments"].find_one({"_id": old["_id"]})
    assert migrated is not None and migrated["terms_version"] == 1
    assert migrated["maturity_date"] == datetime(2026, 3, 31, tzinfo=UTC)
    items = [i async for i in synced_db["schedule_items"].find({"investment_id": old["_id"]},
                                                               sort=[("number", 1)])]
    assert len(items) == 13 and {i["status"] for i in items} == {"due"}
    closed_items = [i async for i in synced_db["schedule_items"].find(
        {"investment_id": redeemed["_id"]}, sort=[("number", 1)])]
    assert [i["status"] for i in closed_items] == ["cancelled"] * 12 + ["paid"]
    assert await synced_db["schedule_items"].count_documents(
        {"investment_id": {"$in": [pending["_id"], cancelled["_id"]]}}) == 0
    kinds = sorted([e["kind"] async for e in synced_db["ledger_entries"].find({})])
    assert kinds == ["principal_returned", "subscription", "subscription", "subscription"]
    assert [r for r in await money_checks(synced_db) if not r.ok] == []

    # Every change carries its audit record; the relay copies each once.
    repos = Repositories(synced_db, cipher=FieldCipher.from_settings(settings))
    trail = AuditTrail(repos.audit_log)
    copied = await trail.relay(repositories=[repos.investments, repos.schedule])
    assert copied == 4 + 13 * 3  # four investments (the pending one too), 39 items

    snapshot = (await _statuses(synced_db),
                await synced_db["schedule_items"].count_documents({}),
                await synced_db["ledger_entries"].count_documents({}))
    await up(synced_db)
    assert (await _statuses(synced_db),
            await synced_db["schedule_items"].count_documents({}),
            await synced_db["ledger_entries"].count_documents({})) == snapshot

    await down(synced_db)
    assert await _statuses(synced_db) == {
        "INV-CORE-2025-000001": "active", "INV-CORE-2025-000002": "active",
        "INV-CORE-2025-000003": "redeemed", "INV-CORE-2025-000004": "pending",
        "INV-CORE-2025-000005": "cancelled"}
    reverted = await synced_db["investments"].find_one({"_id": old["_id"]})
    assert reverted is not None and "terms_version" not in reverted
    assert await synced_db["schedule_items"].count_documents({}) == 0
    # Money movements are never deleted: up again books nothing twice.
    assert await synced_db["ledger_entries"].count_documents({}) == 4
    await up(synced_db)
    assert await synced_db["ledger_entries"].count_documents({}) == 4
    assert await synced_db["schedule_items"].count_documents({}) == 39
