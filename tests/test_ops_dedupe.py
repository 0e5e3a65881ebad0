"""dedupe: duplicates by the business rule go to quarantine; rollback puts them back exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import dedupe as ops
from backend.ops._cli import CommandRefused
from backend.settings import Settings
from tests import ops_factories as f

ADMIN = ObjectId()
ALEJANDRO = ObjectId()
LATER = f.T0 + timedelta(days=2)


def legacy_investments() -> list[dict[str, Any]]:
    """Alejandro's deposit recorded three times (one spelled 25000.0), plus look-alikes."""
    return [
        f.investment(ALEJANDRO, ADMIN, n=1, created_at=LATER),
        f.investment(ALEJANDRO, ADMIN, n=2, created_at=f.T0),  # the oldest: kept
        f.investment(ALEJANDRO, ADMIN, n=3, amount="25000.0", created_at=LATER + timedelta(1)),
        f.investment(ALEJANDRO, ADMIN, n=4, status="cancelled"),  # cancelled: not a duplicate
        f.investment(ALEJANDRO, ADMIN, n=5, deposit=datetime(2025, 9, 2, tzinfo=UTC)),
        f.investment(ALEJANDRO, ADMIN, n=6, fund_code="BALANCE"),
        f.investment(ObjectId(), ADMIN, n=7),
    ]


async def _all(db: AsyncDatabase[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d async for d in db["investments"].find({}, sort=[("_id", 1)])]


async def test_quarantines_all_but_the_oldest_and_rollback_restores_exactly(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    docs = legacy_investments()
    await db["investments"].insert_many(docs)
    before = await _all(db)

    report = await ops.dedupe(db, run_id="run-1")

    assert (report.groups, report.quarantined) == (1, 2)
    left = {d["investment_id"] for d in await _all(db)}
    assert "INV-CORE-2025-000002" in left
    assert not left & {"INV-CORE-2025-000001", "INV-CORE-2025-000003"}
    quarantined = [q async for q in db["dedupe_quarantine"].find({"run_id": "run-1"})]
    assert {q["kept_id"] for q in quarantined} == {docs[1]["_id"]}
    assert {q["original_id"] for q in quarantined} == {docs[0]["_id"], docs[2]["_id"]}

    undo = await ops.rollback(db, "run-1")

    assert undo.restored == 2 and undo.conflicts == []
    after = await _all(db)
    assert after == before
    for old, new in zip(before, after, strict=True):
        assert list(old) == list(new)
        assert type(new["principal_amount"]) is Decimal128
        assert new["deposit_date"] == old["deposit_date"] and new["deposit_date"].tzinfo
    assert await db["dedupe_quarantine"].count_documents({"restored_at": None}) == 0


async def test_keep_newest(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["investments"].insert_many(legacy_investments())
    await ops.dedupe(db, keep="newest")
    ids = [d["investment_id"] for d in await _all(db)]
    assert "INV-CORE-2025-000003" in ids and "INV-CORE-2025-000002" not in ids


async def test_dry_run_and_rerun_change_nothing(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["investments"].insert_many(legacy_investments())
    before = await _all(db)
    dry = await ops.dedupe(db, dry_run=True)
    assert dry.quarantined == 2 and await _all(db) == before
    assert await db["dedupe_quarantine"].count_documents({}) == 0

    await ops.dedupe(db)
    again = await ops.dedupe(db)
    assert (again.groups, again.quarantined) == (0, 0)
    assert len(await _all(db)) == len(before) - 2


async def test_a_document_edited_during_the_run_is_not_deleted(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    docs = legacy_investments()
    await db["investments"].insert_many(docs)
    original = ops._quarantine_batch

    async def edit_then_quarantine(db_: Any, pairs: Any, report: Any) -> None:
        await db["investments"].update_one({"_id": docs[0]["_id"]},
                                           {"$set": {"status_reason": "edited meanwhile"}})
        await original(db_, pairs, report)

    ops._quarantine_batch = edit_then_quarantine  # type: ignore[assignment]
    try:
        report = await ops.dedupe(db, run_id="run-2")
    finally:
        ops._quarantine_batch = original  # type: ignore[assignment]

    assert report.quarantined == 1 and report.changed_meanwhile == [str(docs[0]["_id"])]
    kept = await db["investments"].find_one({"_id": docs[0]["_id"]})
    assert kept is not None and kept["status_reason"] == "edited meanwhile"
    assert await db["dedupe_quarantine"].count_documents({"original_id": docs[0]["_id"]}) == 0


async def test_rollback_of_an_unknown_run_is_refused(db: AsyncDatabase[dict[str, Any]]) -> None:
    with pytest.raises(CommandRefused, match="no quarantined documents"):
        await ops.rollback(db, "nope")


async def test_cli_dedupe_and_rollback(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    await db["investments"].insert_many(legacy_investments())
    assert ops.main(["--dry-run", "--json"], settings=settings) == 1  # duplicates found
    assert json.loads(capsys.readouterr().out)["quarantined"] == 2

    assert ops.main(["--json"], settings=settings) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["quarantined"] == 2 and await db["investments"].count_documents({}) == 5

    assert ops.main(["--rollback", run["run_id"], "--json"], settings=settings) == 0
    assert json.loads(capsys.readouterr().out)["restored"] == 2
    assert await db["investments"].count_documents({}) == 7
    actions = [a["action"] async for a in db["audit_log"].find({}, sort=[("at", 1), ("_id", 1)])]
    # Each quarantined investment's removal and return is recorded under its own id.
    assert sorted(actions) == sorted(["investment.quarantine"] * 2 + ["data_script.dedupe"]
                                     + ["investment.restore"] * 2
                                     + ["data_script.dedupe_rollback"])

    assert ops.main(["--rollback", "missing-run"], settings=settings) == 2
    assert "no quarantined documents" in capsys.readouterr().err


def _account(investment_id: Any, n: int) -> dict[str, Any]:
    return {"_id": ObjectId(), "account_id": f"MT5-{n}", "client_id": ALEJANDRO,
            "fund_code": "CORE", "investment_id": investment_id, "mt5_login": n,
            "server": "Fidus-Live", "is_active": True}


async def test_keeps_the_investment_an_mt5_account_points_to(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    docs = legacy_investments()
    await db["investments"].insert_many(docs)
    newest = docs[2]  # not the oldest, which would be kept otherwise
    await db["mt5_accounts"].insert_one(_account(newest["_id"], 1))

    report = await ops.dedupe(db, run_id="run-linked")

    assert (report.groups, report.quarantined, report.skipped) == (1, 2, [])
    assert await db["investments"].find_one({"_id": newest["_id"]}) is not None
    quarantined = {q["original_id"] async for q in db["dedupe_quarantine"].find({})}
    assert quarantined == {docs[0]["_id"], docs[1]["_id"]}


async def test_a_group_with_two_linked_investments_is_skipped_and_reported(
        db: AsyncDatabase[dict[str, Any]], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    docs = legacy_investments()
    await db["investments"].insert_many(docs)
    await db["mt5_accounts"].insert_many([_account(docs[0]["_id"], 1),
                                          _account(docs[2]["_id"], 2)])
    before = await _all(db)

    assert ops.main(["--json"], settings=settings) == 1  # findings left
    out = json.loads(capsys.readouterr().out)

    assert out["quarantined"] == 0 and await _all(db) == before
    (skipped,) = out["skipped"]
    assert set(skipped["linked"]) == {str(docs[0]["_id"]), str(docs[2]["_id"])}
    assert len(skipped["investments"]) == 3
    assert await db["dedupe_quarantine"].count_documents({}) == 0
