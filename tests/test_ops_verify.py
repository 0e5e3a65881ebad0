"""verify: references, money against MT5 equity, duplicates; one result per check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import verify as ops
from backend.ops.seed import seed
from backend.settings import Settings
from tests import ops_factories as f


def _by_name(results: list[ops.CheckResult]) -> dict[str, ops.CheckResult]:
    return {r.name: r for r in results}


async def test_broken_references_are_found_with_sample_ids(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    admin, client = f.user(0, user_type="admin"), f.user(1)
    await db["users"].insert_many([admin, client])
    orphan = f.investment(ObjectId(), admin["_id"], n=1)
    await db["investments"].insert_many([f.investment(client["_id"], admin["_id"], n=2), orphan])
    await db["sessions"].insert_one({"token_hash": "0" * 64, "user_id": ObjectId(),
                                     "created_at": f.T0, "expires_at": f.T0})
    await db["crm_prospects"].insert_one({"name": "P", "email": "p@x.example", "stage": "won",
                                          "converted_client_id": ObjectId()})
    await db["audit_log"].insert_many([
        {"actor_type": "admin", "actor_id": None, "action": "user.create",
         "entity_type": "user", "entity_id": "x", "at": f.T0},
        {"actor_type": "script", "actor_id": None, "action": "data_script.seed",
         "entity_type": "data_script", "entity_id": "y", "at": f.T0},
    ])

    results = _by_name(await ops.verify(db))

    broken = results["investments.client_id -> users"]
    assert (broken.checked, broken.failed, broken.sample_ids) == (2, 1, [str(orphan["_id"])])
    assert results["sessions.user_id -> users"].failed == 1
    assert results["crm_prospects.converted_client_id -> users"].failed == 1
    assert results["audit_log.actor_id -> users"].failed == 1  # the unnamed admin, not the script
    assert results["investments.created_by -> users"].ok


async def test_money_within_the_unit_rounding_passes_and_beyond_fails(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    client, admin = f.user(1), f.user(0, user_type="admin")
    await db["users"].insert_many([client, admin])
    accounts = []
    # (value, awaiting its deposit) of each investment on the account, and the account's equity.
    for n, (held, equity) in enumerate([
            ([("100000.00", False)], "100000.00"),                   # exact
            ([("100000.00", False)], "100000.02"),                   # 2 cents off, 1 holder
            ([("5.00", False)], "5.01"),                             # half a cent, up: within
            ([("5.00", False)], None),                               # never synced
            ([("80000.00", False), ("20000.00", True)], "80000.00"),  # the top-up awaits
            ([("20000.00", True)], "0.00"),                          # nobody holds units yet
            ([("60000.00", False), ("40000.01", False)], "100000.00"),  # 1 cent, 2 holders
            ], start=1):
        account_id = ObjectId()
        ids = []
        for k, (value, awaiting) in enumerate(held):
            inv = f.investment(client["_id"], admin["_id"], n=10 * n + k,
                               current_value=Decimal128(value), mt5_account_id=account_id,
                               units=Decimal128("0" if awaiting else value),
                               awaiting_deposit=awaiting)
            await db["investments"].insert_one(inv)
            ids.append(inv["_id"])
        accounts.append({"_id": account_id, "client_id": client["_id"], "fund_code": "CORE",
                         "investment_id": ids[0], "mt5_login": 80000000 + n,
                         "server": "S", "is_active": True, "currency": "USD",
                         "equity": Decimal128(equity) if equity else None})
    await db["mt5_accounts"].insert_many(accounts)

    money = _by_name(await ops.verify(db))["investment current_value vs MT5 equity"]
    assert (money.checked, money.failed) == (5, 1)
    assert money.sample_ids == [str(accounts[1]["_id"])]
    assert "1 not yet synced, 1 with no units held yet" in money.note


async def test_cli_after_seed_is_clean_then_reports_a_duplicate(
        db: AsyncDatabase[dict[str, Any]], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    await seed(db, settings, state="test", seed_number=1)
    assert ops.main(["--json"], settings=settings) == 0
    clean = json.loads(capsys.readouterr().out)
    assert all(c["failed"] == 0 for c in clean["checks"])

    # a legacy duplicate: the unique index would refuse it, as it refused it in production
    await db["investments"].drop_index("investments_no_duplicate")
    original = await db["investments"].find_one({})
    assert original is not None
    copy = dict(original, _id=ObjectId(), investment_id="INV-COPY-0001", idempotency_key=None)
    await db["investments"].insert_one(copy)

    assert ops.main([], settings=settings) == 1
    printed = capsys.readouterr().out
    assert "FAIL duplicate investments" in printed and str(copy["_id"]) in printed
