"""seed: connected data through the services, deterministic, never in production."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import seed as ops
from backend.ops._cli import CommandRefused
from backend.ops.verify import verify
from backend.security.passwords import verify_password
from backend.settings import Environment, Settings


async def _people(db: AsyncDatabase[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted([(u["email"], u["first_name"], u["last_name"], u["user_type"])
                   async for u in db["users"].find({})])


async def _amounts(db: AsyncDatabase[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted([(i["fund_code"], str(i["principal_amount"]), i["deposit_date"])
                   async for i in db["investments"].find({})])


async def test_demo_is_connected_and_verify_finds_nothing(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    report = await ops.seed(db, settings, state="demo", seed_number=7)

    assert report.counts == {"users": 6, "investments": 4, "mt5_accounts": 4,
                             "crm_prospects": 3}
    assert report.mt5_logins == [80000001, 80000002, 80000003, 80000004]
    failed = [(r.name, r.sample_ids) for r in await verify(db) if not r.ok]
    assert failed == []
    admin = await db["users"].find_one({"email": "admin@fidus.example"})
    assert admin is not None and await verify_password(ops.DEMO_PASSWORD, admin["password_hash"])
    assert await db["audit_log"].count_documents({"action": "investment.create"}) == 4
    accounts = [a async for a in db["mt5_accounts"].find({})]
    assert all(a["investment_id"] is not None for a in accounts)


async def test_same_seed_same_data(db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    await ops.seed(db, settings, state="test", seed_number=3)
    first = (await _people(db), await _amounts(db))
    await ops.seed(db, settings, state="test", seed_number=3, reset=True)
    assert (await _people(db), await _amounts(db)) == first
    await ops.seed(db, settings, state="test", seed_number=4, reset=True)
    assert (await _people(db), await _amounts(db)) != first


async def test_refuses_a_database_with_users_unless_reset(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    await ops.seed(db, settings, state="test")
    with pytest.raises(CommandRefused, match="already holds users"):
        await ops.seed(db, settings, state="test")
    empty = await ops.seed(db, settings, state="empty", reset=True)
    assert empty.counts["users"] == 0


async def test_cli_refuses_production(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Real production settings would also demand secrets; only the environment matters here.
    production = settings.model_copy(update={"fidus_env": Environment.PRODUCTION})
    assert production.is_production
    assert ops.main(["--state", "demo", "--json"], settings=production) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["message"] == "refusing to seed a production database"
    assert await db["users"].count_documents({}) == 0


async def test_cli_seed_dev_prints_logins(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert ops.main(["--state", "dev", "--seed", "2", "--json"], settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"email": "admin@fidus.example", "password": ops.DEMO_PASSWORD,
            "role": "admin"} in out["logins"]
    assert out["counts"]["users"] == 9  # admin, manager, 6 clients, 1 converted prospect
    assert await db["crm_prospects"].count_documents({"converted_client_id": {"$ne": None}}) == 1
