"""The restore drill: the newest backup restored into a scratch database, compared with its
manifest and verified there; the scratch database is dropped and the outcome recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.users import KycStatus, UserType
from backend.ops import backup as ops
from backend.ops import restore_drill as drill
from backend.ops.backup_cipher import BackupKeys
from backend.services import Actor, Services
from backend.settings import Settings
from tests.factories import investment_create, user_create
from tests.support import make_settings


@pytest.fixture
def drill_settings(mongo_uri: str, db_name: str, tmp_path: Path) -> Settings:
    return make_settings(mongo_uri, db_name, backup_directory=tmp_path / "backups",
                         backup_encryption_key=Fernet.generate_key().decode())


async def _business(db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    services = Services(db, settings)
    admin = await services.users.create_user(user_create(user_type=UserType.ADMIN),
                                             actor=Actor.system(), kyc_status=KycStatus.APPROVED)
    actor = Actor.user(admin.id, "admin")
    client = await services.users.create_user(user_create(), actor=actor,
                                              kyc_status=KycStatus.APPROVED)
    await services.investments.create(investment_create(client), actor=actor)


async def _dropped(client: AsyncMongoClient[dict[str, Any]], scratch: str) -> bool:
    # listDatabases is not available on the embedded server once a database holds Decimal128.
    assert scratch.startswith("fidus_test_") and "_drill_" in scratch
    return await client[scratch].list_collection_names() == []


async def test_the_drill_restores_compares_verifies_drops_and_records(
        synced_db: AsyncDatabase[dict[str, Any]], drill_settings: Settings,
        mongo_client: AsyncMongoClient[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    await _business(synced_db, drill_settings)
    older = ops.default_path(synced_db.name, directory=drill_settings.backup_directory,
                             encrypted=True, at=datetime(2026, 1, 1, tzinfo=UTC))
    await ops.backup(synced_db, older, keys=BackupKeys.from_settings(drill_settings))
    assert ops.backup_main(["--json"], settings=drill_settings) == 0
    newest = Path(json.loads(capsys.readouterr().out)["path"])

    assert drill.main(["--json"], settings=drill_settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "succeeded" and out["findings"] == []
    assert out["file"] == str(newest)
    assert out["collections"]["investments"] == {"manifest": 1, "restored": 1,
                                                 "checksum_ok": True}
    assert out["collections"]["users"]["restored"] == 2
    assert await _dropped(mongo_client, out["scratch_database"])
    (run,) = [r async for r in synced_db["backup_runs"].find({"kind": "restore_drill"})]
    assert (run["outcome"], run["trigger"], run["file"]) == ("succeeded", "manual", str(newest))
    assert run["checks"] == [] and run["encrypted"] is True
    # The people, the investment and its records (6), its 13 schedule items with their 13
    # creation records, and its subscription entry.
    assert run["documents"] == sum(c["manifest"] for c in out["collections"].values()) == 33


async def test_a_backup_that_fails_verify_fails_the_drill(
        synced_db: AsyncDatabase[dict[str, Any]], drill_settings: Settings,
        mongo_client: AsyncMongoClient[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    await _business(synced_db, drill_settings)
    # An investment of a client that does not exist: the integrity check's business.
    await synced_db["investments"].update_one({}, {"$set": {"client_id": ObjectId()}})
    assert ops.backup_main(["--json"], settings=drill_settings) == 0
    capsys.readouterr()

    assert drill.main(["--json"], settings=drill_settings) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["title"] == "restore drill FAILED" and out["outcome"] == "failed"
    (finding,) = out["findings"]
    assert finding.startswith("verify: investments.client_id -> users: 1 of 1 failed (e.g. ")
    assert all(c["checksum_ok"] for c in out["collections"].values())
    run = await synced_db["backup_runs"].find_one({"kind": "restore_drill"})
    assert run is not None and run["outcome"] == "failed" and run["checks"] == [finding]
    assert await _dropped(mongo_client, out["scratch_database"])


async def test_a_tampered_newest_backup_fails_the_drill_in_one_line(
        synced_db: AsyncDatabase[dict[str, Any]], drill_settings: Settings,
        mongo_client: AsyncMongoClient[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    await _business(synced_db, drill_settings)
    assert ops.backup_main(["--json"], settings=drill_settings) == 0
    path = Path(json.loads(capsys.readouterr().out)["path"])
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))

    assert drill.main(["--json"], settings=drill_settings) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert "BACKUP_CORRUPT" in error["message"] and "\n" not in error["message"]
    run = await synced_db["backup_runs"].find_one({"kind": "restore_drill"})
    assert run is not None and run["outcome"] == "failed"
    assert run["error"].startswith("BACKUP_CORRUPT: ")


async def test_no_backup_to_drill(synced_db: AsyncDatabase[dict[str, Any]],
                                  drill_settings: Settings,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert drill.main(["--json"], settings=drill_settings) == 2
    assert "no backup of" in json.loads(capsys.readouterr().out)["error"]["message"]


async def test_the_drill_names_a_partial_backup(
        synced_db: AsyncDatabase[dict[str, Any]], drill_settings: Settings,
        tmp_path: Path) -> None:
    path = tmp_path / "users-only.jsonl.gz.enc"
    await ops.backup(synced_db, path, collections=["users"],
                     keys=BackupKeys.from_settings(drill_settings))
    report, run = await drill.restore_drill(synced_db, drill_settings, path=path)
    assert not report.passed
    assert report.findings[0] == "users-only.jsonl.gz.enc is not a whole-database backup"
    assert run.complete is False
