"""validate-data: problems counted per kind; --fix migrates legacy users, resumably and batched."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from backend.db.connection import CODEC_OPTIONS
from backend.db.schema_registry import get_schema
from backend.ops import validate as ops
from backend.ops._cli import CommandRefused
from backend.ops.backup import ENCRYPTED_SUFFIX, BackupSource, verify_file
from backend.ops.backup_cipher import BackupKeys
from backend.repositories.base import PENDING_BATCH
from backend.settings import Settings
from tests import ops_factories as f
from tests.support import CommandRecorder, make_settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
N = 35
BATCH = 10


def legacy_set() -> list[dict[str, Any]]:
    docs = [f.legacy_user(i, legacy_type=("client", "manager", "Admin")[i % 3]) for i in range(N)]
    docs[5]["version"] = 4
    docs[6]["is_active"] = False
    docs[7]["kyc_status"] = "approved"
    return docs


def odd_ones() -> list[dict[str, Any]]:
    return [
        f.legacy_user(100, legacy_type="superuser"),
        f.legacy_user(101, username="x!"),
        f.legacy_user(102, legacy_type="client", email="not-an-email"),
    ]


async def _users(db: AsyncDatabase[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d async for d in db["users"].find({}, sort=[("_id", 1)])]


@pytest.fixture
async def other_db(mongo_client: AsyncMongoClient[dict[str, Any]],
                   db_name: str) -> Any:
    name = db_name + "_b"
    yield mongo_client.get_database(name, codec_options=CODEC_OPTIONS)
    await mongo_client.drop_database(name)


async def test_validate_counts_problems_with_sample_ids(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["users"].insert_many([f.user(1), *legacy_set()[:3], f.user(2, email="bad")])
    report = await ops.validate(db, collections=["users"])

    assert report.checked == {"users": 5}
    assert report.invalid_documents == {"users": 4}
    legacy = report.problems[("users", "legacy user (type instead of user_type)")]
    assert legacy.count == 3 and len(legacy.sample_ids) == 3
    assert report.problems[("users", "email: does not match pattern")].count == 1
    assert report.problems[("users", "kyc_status: missing")].count == 3


async def test_fix_brings_legacy_users_to_the_schema_and_reports_unknown_values(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    docs = legacy_set() + odd_ones()
    await db["users"].insert_many(docs)

    report = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path,
                                        clock=lambda: NOW)

    assert (report.legacy_found, report.fixed, report.refused_count) == (N + 3, N, 3)
    reasons = {str(r.doc_id): r.reasons[0] for r in report.refused}
    assert reasons[str(docs[N]["_id"])] == "type: unknown value 'superuser'"
    assert "cannot derive" in reasons[str(docs[N + 1]["_id"])]
    assert "email: does not match pattern" in reasons[str(docs[N + 2]["_id"])]
    # the refused documents are untouched
    for original in docs[N:]:
        assert await db["users"].find_one({"_id": original["_id"]}) == original

    fixed = {d["_id"]: d for d in await _users(db) if "type" not in d}
    assert len(fixed) == N
    first = fixed[docs[0]["_id"]]
    assert first["user_type"] == "client" and first["user_id"] == "legacy_user0"
    assert (first["is_active"], first["kyc_status"], first["aml_status"]) == (True, "pending",
                                                                               "pending")
    assert first["failed_login_attempts"] == 0 and first["version"] == 1
    assert first["created_at"] == docs[0]["_id"].generation_time and first["updated_at"] == NOW
    assert fixed[docs[2]["_id"]]["user_type"] == "admin"
    assert fixed[docs[5]["_id"]]["version"] == 5
    assert fixed[docs[6]["_id"]]["is_active"] is False
    assert fixed[docs[7]["_id"]]["kyc_status"] == "approved"

    remaining = await ops.validate(db, collections=["users"])
    assert remaining.invalid_documents == {"users": 3}
    assert report.backup_path is not None
    assert verify_file(report.backup_path).entry("users").count == N + 3
    audit = await db["audit_log"].find_one({"action": "data_script.fix_legacy_users"})
    assert audit is not None and audit["after"]["fixed"] == N


async def test_fixed_users_are_accepted_by_the_servers_validator(
        synced_db: AsyncDatabase[dict[str, Any]], other_db: AsyncDatabase[dict[str, Any]],
        tmp_path: Path) -> None:
    await other_db["users"].insert_many(legacy_set()[:6])
    await ops.fix_legacy_users(other_db, batch_size=BATCH, backup_directory=tmp_path)
    fixed = await _users(other_db)
    result = await synced_db["users"].insert_many(fixed)  # the validator refuses a bad one
    assert len(result.inserted_ids) == 6
    assert get_schema("users").validation_level == "strict"


async def test_crash_after_two_batches_then_rerun_equals_an_uninterrupted_run(
        db: AsyncDatabase[dict[str, Any]], other_db: AsyncDatabase[dict[str, Any]],
        tmp_path: Path) -> None:
    docs = legacy_set() + odd_ones()
    await db["users"].insert_many([dict(d) for d in docs])
    await other_db["users"].insert_many([dict(d) for d in docs])

    class Crash(RuntimeError):
        pass

    def crash_after_two(batch: int) -> None:
        if batch == 2:
            raise Crash

    with pytest.raises(Crash):
        await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path,
                                   clock=lambda: NOW, after_batch=crash_after_two)
    assert await db["users"].count_documents({"type": {"$exists": True}}) == N + 3 - 2 * BATCH

    resumed = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path,
                                         clock=lambda: NOW)
    assert resumed.fixed == N - 2 * BATCH
    again = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path,
                                       clock=lambda: NOW)
    assert again.fixed == 0 and again.refused_count == 3

    await ops.fix_legacy_users(other_db, batch_size=BATCH, backup_directory=tmp_path,
                               clock=lambda: NOW)
    assert await _users(db) == await _users(other_db)


async def test_writes_are_batched(db: AsyncDatabase[dict[str, Any]], tmp_path: Path,
                                  command_recorder: CommandRecorder) -> None:
    await db["users"].insert_many(legacy_set())
    command_recorder.reset()
    report = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path)
    assert report.fixed == N
    batches = math.ceil(N / BATCH)
    # Each fixed user's `user.import` record rides in its update; the relay then copies them
    # into audit_log a hundred documents at a time (one insert, one update each).
    relays = math.ceil(N / PENDING_BATCH)
    assert command_recorder.count("update") == batches + relays
    assert command_recorder.writes() <= batches + 2 * relays + 1  # + the run's audit record
    imports = await db["audit_log"].count_documents({"action": "user.import"})
    assert imports == N
    assert await db["users"].count_documents({"_outbox.0": {"$exists": True}}) == 0


async def test_dry_run_changes_nothing(db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    docs = legacy_set()
    await db["users"].insert_many(docs)
    report = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path,
                                        dry_run=True)
    assert report.would_fix == N and report.fixed == 0 and report.backup_path is None
    assert await _users(db) == docs
    assert not list(tmp_path.iterdir())


async def test_cli_fix_json_and_exit_codes(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                                           tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    await db["users"].insert_many(legacy_set()[:4] + odd_ones()[:1])
    args = ["--fix", "--json", "--batch-size", "3", "--backup-dir", str(tmp_path),
            "--collections", "users"]
    assert ops.main(args, settings=settings) == 1  # the superuser is left for a person
    out = json.loads(capsys.readouterr().out)
    assert out["fix"]["fixed"] == 4 and out["fix"]["batches"] == 2
    assert out["invalid_documents"] == {"users": 1}
    assert out["fix"]["refused"][0]["reasons"] == ["type: unknown value 'superuser'"]

    await db["users"].delete_one({"type": "superuser"})
    assert ops.main(["--json", "--collections", "users"], settings=settings) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


async def test_a_derived_user_id_already_taken_is_reported_not_reused(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    existing = f.user(1, user_id="legacy_user0")
    clash = f.legacy_user(0)
    same_twice = [f.legacy_user(1, username="twin.a"), f.legacy_user(2, username="twin_a")]
    await db["users"].insert_many([existing, clash, *same_twice])

    report = await ops.fix_legacy_users(db, batch_size=BATCH, backup_directory=tmp_path)

    assert report.fixed == 1
    reasons = {r.doc_id: r.reasons[0] for r in report.refused}
    assert reasons == {clash["_id"]: "user_id: derived 'legacy_user0' is already taken",
                       same_twice[1]["_id"]: "user_id: derived 'twin_a' is already taken"}
    assert await db["users"].find_one({"_id": clash["_id"]}) == clash


async def test_fix_pages_over_ids_of_every_type(db: AsyncDatabase[dict[str, Any]],
                                                tmp_path: Path,
                                                command_recorder: CommandRecorder,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A real MongoDB's `_id > "legacy-b"` matches strings only (comparisons stay within one
    # BSON type), so paging on the last _id seen skipped every ObjectId after a page that ended
    # on a string id. The embedded server compares across types, so the filters are checked.
    odd_ids = [f.legacy_user(1, _id="legacy-a"), f.legacy_user(2, _id="legacy-b"),
               f.legacy_user(3, _id=7)]
    fixable = [f.legacy_user(i) for i in (4, 5, 6)]
    await db["users"].insert_many(odd_ids + fixable)
    finds: list[Any] = []
    record = command_recorder.started

    def started(event: Any) -> None:
        if event.command_name == "find":
            finds.append(event.command.get("filter"))
        record(event)

    monkeypatch.setattr(command_recorder, "started", started)
    command_recorder.reset()

    report = await ops.fix_legacy_users(db, batch_size=2, backup_directory=tmp_path)

    assert (report.legacy_found, report.fixed) == (6, 3)
    # The schema wants ObjectId ids: the others are reported, not skipped silently.
    assert sorted(str(r.doc_id) for r in report.refused) == ["7", "legacy-a", "legacy-b"]
    left = [d["_id"] async for d in db["users"].find({"type": {"$exists": True}})]
    assert sorted(map(str, left)) == ["7", "legacy-a", "legacy-b"]
    # The pages holding ObjectIds, one write each, and one relay of their import records.
    assert command_recorder.count("update") == 2 + 1
    ranges = [flt for flt in finds if isinstance(flt, dict) and isinstance(flt.get("_id"), dict)
              and {"$gt", "$gte", "$lt", "$lte"} & set(flt["_id"])]
    assert ranges == []


async def test_cli_fix_backup_is_encrypted_when_a_backup_key_is_set(
        db: AsyncDatabase[dict[str, Any]], mongo_uri: str, db_name: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = legacy_set()[:4]
    await db["users"].insert_many(legacy)
    keyed = make_settings(mongo_uri, db_name, backup_encryption_key=Fernet.generate_key().decode())
    args = ["--fix", "--json", "--backup-dir", str(tmp_path), "--collections", "users"]
    assert ops.main(args, settings=keyed) == 0
    assert json.loads(capsys.readouterr().out)["fix"]["fixed"] == 4

    (copy,) = tmp_path.iterdir()
    assert copy.name.endswith(ENCRYPTED_SUFFIX)
    with pytest.raises(CommandRefused):
        verify_file(copy)  # no key: refused, not read
    assert verify_file(BackupSource(copy, BackupKeys.from_settings(keyed))).entry(
        "users").count == 4
    sealed = copy.read_bytes()
    assert not any(user["email"].encode() in sealed for user in legacy)
