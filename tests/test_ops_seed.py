"""seed: connected data through the services, deterministic, never in production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import seed as ops
from backend.ops._cli import CommandRefused
from backend.ops.backup import ENCRYPTED_SUFFIX, BackupSource, verify_file
from backend.ops.backup_cipher import BackupKeys
from backend.ops.verify import verify
from backend.security.passwords import verify_password
from backend.settings import Environment, Settings
from tests import ops_factories as f
from tests.support import WRITE_COMMANDS, CommandRecorder, make_settings


async def _people(db: AsyncDatabase[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted([(u["email"], u["first_name"], u["last_name"], u["user_type"])
                   async for u in db["users"].find({})])


async def _amounts(db: AsyncDatabase[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted([(i["fund_code"], str(i["principal_amount"]), i["deposit_date"])
                   async for i in db["investments"].find({})])


async def test_demo_is_connected_and_verify_finds_nothing(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    report = await ops.seed(db, settings, state="demo", seed_number=7)

    assert report.counts == {"users": 6, "investments": 8, "mt5_accounts": 6,
                             "crm_prospects": 3}
    assert report.mt5_logins == list(range(80000001, 80000007))
    failed = [(r.name, r.sample_ids) for r in await verify(db) if not r.ok]
    assert failed == []
    admin = await db["users"].find_one({"email": "admin@fidus.example"})
    assert admin is not None and await verify_password(ops.DEMO_PASSWORD, admin["password_hash"])
    assert await db["audit_log"].count_documents({"action": "investment.create"}) == 8
    # The whole lifecycle: every state, and paid and due items.
    states = set(await db["investments"].distinct("status"))
    assert {"pending", "incubating", "closed", "cancelled"} <= states
    assert states & {"active", "matured"}
    assert set(await db["schedule_items"].distinct("status")) >= {"paid", "due", "scheduled",
                                                                    "cancelled"}
    assert await db["ledger_entries"].count_documents({"kind": "reversal"}) == 1
    assert await db["ledger_entries"].count_documents({"kind": "principal_returned"}) == 1
    accounts = [a async for a in db["mt5_accounts"].find({})]
    assert all(a["investment_id"] is not None for a in accounts)


async def test_same_seed_same_data(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                   tmp_path: Path) -> None:
    await ops.seed(db, settings, state="test", seed_number=3)
    first = (await _people(db), await _amounts(db))
    await ops.seed(db, settings, state="test", seed_number=3, reset=True,
                   backup_directory=tmp_path)
    assert (await _people(db), await _amounts(db)) == first
    await ops.seed(db, settings, state="test", seed_number=4, reset=True,
                   backup_directory=tmp_path)
    assert (await _people(db), await _amounts(db)) != first


async def test_refuses_a_database_with_users_unless_reset(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path) -> None:
    await ops.seed(db, settings, state="test")
    with pytest.raises(CommandRefused, match="already holds users"):
        await ops.seed(db, settings, state="test")
    empty = await ops.seed(db, settings, state="empty", reset=True, backup_directory=tmp_path)
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


async def test_reset_backs_up_what_it_deletes_and_keeps_the_audit_log(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path) -> None:
    await ops.seed(db, settings, state="test")
    audit_before = [a async for a in db["audit_log"].find({}, sort=[("_id", 1)])]
    users_before = await db["users"].count_documents({})

    report = await ops.seed(db, settings, state="test", seed_number=2, reset=True,
                            backup_directory=tmp_path)

    assert report.backup_path is not None and report.backup_path.parent == tmp_path
    manifest = verify_file(report.backup_path)
    assert manifest.entry("users").count == users_before
    assert "audit_log" not in [c.name for c in manifest.collections]
    assert report.deleted["users"] == users_before and "audit_log" not in report.deleted
    audit_after = [a async for a in db["audit_log"].find({}, sort=[("_id", 1)])]
    assert audit_after[:len(audit_before)] == audit_before
    (reset_record,) = [a for a in audit_after if a["action"] == "data_script.seed_reset"]
    assert reset_record["after"]["backup"] == str(report.backup_path)
    assert reset_record["after"]["deleted"]["users"] == users_before
    # Each removed audited document's removal is on record, so its older records stay
    # explained and `make verify` finds nothing.
    deletes = [a for a in audit_after if a["action"] == "user.delete"]
    assert len(deletes) == users_before and {a["request_id"] for a in deletes} == {
        reset_record["request_id"]}
    assert [r.name for r in await verify(db) if not r.ok] == []


async def test_reset_refuses_users_outside_the_seed_domain_unless_told(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await ops.seed(db, settings, state="test")
    await db["users"].insert_one(f.user(9, email="real.client@gmail.com"))
    args = ["--state", "test", "--reset", "--backup-dir", str(tmp_path), "--json"]

    assert ops.main(args, settings=settings) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert "1 user" in error["message"] and "--reset-non-demo-data" in error["message"]
    assert await db["users"].count_documents({"email": "real.client@gmail.com"}) == 1
    assert list(tmp_path.iterdir()) == []

    assert ops.main([*args, "--reset-non-demo-data"], settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert await db["users"].count_documents({"email": "real.client@gmail.com"}) == 0
    assert out["backup"] and Path(out["backup"]).parent == tmp_path
    assert verify_file(Path(out["backup"])).entry("users").count == 5


async def test_dry_run_reports_and_writes_nothing(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path,
        command_recorder: CommandRecorder, capsys: pytest.CaptureFixture[str]) -> None:
    await ops.seed(db, settings, state="test")
    before = await _people(db)
    command_recorder.reset()

    report = await ops.seed(db, settings, state="dev", reset=True, dry_run=True,
                            backup_directory=tmp_path)

    assert report.dry_run and report.backup_path is None
    assert report.deleted == {"users": 4, "investments": 2, "crm_prospects": 1,
                              "schedule_items": 26, "ledger_entries": 2}
    assert report.would_create == {"users": 9, "investments": 6, "mt5_accounts": 3,
                                   "crm_prospects": 4}
    sent = set(command_recorder.names())
    assert not sent & (WRITE_COMMANDS | {"create", "createIndexes", "collMod", "drop"}), sent
    assert await _people(db) == before and list(tmp_path.iterdir()) == []

    assert ops.main(["--state", "demo", "--reset", "--dry-run", "--json"],
                    settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["would_create"]["mt5_accounts"] == 6
    assert out["would_delete"]["users"] == 4 and await _people(db) == before


async def test_reset_backup_is_encrypted_when_a_backup_key_is_set(
        db: AsyncDatabase[dict[str, Any]], mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    keyed = make_settings(mongo_uri, db_name, backup_encryption_key=Fernet.generate_key().decode())
    await ops.seed(db, keyed, state="test")
    users_before = await db["users"].count_documents({})
    emails = [u["email"] async for u in db["users"].find({})]

    report = await ops.seed(db, keyed, state="test", seed_number=2, reset=True,
                            backup_directory=tmp_path)

    assert report.backup_path is not None and report.backup_path.name.endswith(ENCRYPTED_SUFFIX)
    with pytest.raises(CommandRefused):
        verify_file(report.backup_path)  # no key: refused, not read
    manifest = verify_file(BackupSource(report.backup_path, BackupKeys.from_settings(keyed)))
    assert manifest.entry("users").count == users_before
    sealed = report.backup_path.read_bytes()
    assert not any(email.encode() in sealed for email in emails)
