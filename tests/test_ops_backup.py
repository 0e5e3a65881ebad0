"""Backup and restore: one gzip file of canonical Extended JSON lines, restored exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, Int64
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import WriteError

from backend.ops import backup as ops
from backend.ops._cli import CommandRefused
from backend.settings import Settings
from tests import ops_factories as f


async def _fill(db: AsyncDatabase[dict[str, Any]]) -> None:
    admin = f.user(0, user_type="admin")
    client = f.user(1)
    await db["users"].insert_many([admin, client, f.legacy_user(2)])
    await db["investments"].insert_many([
        f.investment(client["_id"], admin["_id"], n=1, amount="1000000.01"),
        f.investment(client["_id"], admin["_id"], n=2, amount="0.10",
                     nested={"a": [Decimal128("1.50"), Int64(7)]}),
    ])


async def _snapshot(db: AsyncDatabase[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [doc async for doc in db[name].find({}, sort=[("_id", 1)])]


async def test_backup_then_restore_is_exact(db: AsyncDatabase[dict[str, Any]],
                                            tmp_path: Path) -> None:
    await _fill(db)
    before = {name: await _snapshot(db, name) for name in ("users", "investments")}
    path = tmp_path / "b.jsonl.gz"
    manifest = await ops.backup(db, path, collections=["users", "investments"])
    assert (manifest.entry("users").count, manifest.entry("investments").count) == (3, 2)

    await db["users"].drop()
    await db["investments"].drop()
    report = await ops.restore(db, path)

    assert report.restored == {"users": 3, "investments": 2}
    for name, docs in before.items():
        after = await _snapshot(db, name)
        assert after == docs
        for old, new in zip(docs, after, strict=True):
            assert list(old) == list(new)  # field order too
            for key in old:
                assert type(old[key]) is type(new[key]), key
    assert type(after[1]["nested"]["a"][1]) is Int64


async def test_restore_refuses_non_empty_collections_unless_replace(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz"
    await ops.backup(db, path, collections=["users"])
    await db["users"].delete_one({"username": "user1"})

    with pytest.raises(CommandRefused, match="non-empty collections: users"):
        await ops.restore(db, path)
    assert await db["users"].count_documents({}) == 2

    report = await ops.restore(db, path, replace=True, safety_directory=tmp_path / "safety")
    assert await db["users"].count_documents({}) == 3
    assert report.safety_backup is not None
    assert ops.verify_file(report.safety_backup).entry("users").count == 2


async def test_restore_refuses_a_tampered_file_before_writing(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz"
    await ops.backup(db, path, collections=["investments"])
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    lines[1] = lines[1].replace("1000000.01", "9000000.01")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    await db["investments"].drop()

    with pytest.raises(ops.BackupCorrupt, match="investments does not match its manifest"):
        await ops.restore(db, path)
    assert await db["investments"].count_documents({}) == 0


async def test_truncated_file_is_refused(db: AsyncDatabase[dict[str, Any]],
                                         tmp_path: Path) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz"
    await ops.backup(db, path, collections=["users"])
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))
    with pytest.raises(ops.BackupCorrupt, match="truncated"):
        ops.verify_file(path)


async def test_cli_backup_and_restore_json_and_exit_codes(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await _fill(db)
    path = tmp_path / "cli.jsonl.gz"
    assert ops.backup_main(["--out", str(path), "--collections", "users", "--json"],
                           settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["collections"]["users"]["count"] == 3

    assert ops.restore_main([str(path), "--json"], settings=settings) == 2
    refused = json.loads(capsys.readouterr().out)
    assert refused["error"]["code"] == "REFUSED"
    assert "non-empty" in refused["error"]["message"]

    await db["users"].drop()
    assert ops.restore_main([str(path), "--json"], settings=settings) == 0
    assert json.loads(capsys.readouterr().out)["restored"] == {"users": 3}
    assert await db["users"].count_documents({}) == 3
    assert await db["audit_log"].count_documents({"action": "data_script.restore"}) == 1


async def test_a_failed_replace_leaves_the_collection_as_it_was_and_names_the_safety_backup(
        db: AsyncDatabase[dict[str, Any]], settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz"
    await ops.backup(db, path, collections=["users", "investments"])
    await db["users"].delete_one({"username": "user1"})
    # The backup holds two users named Ana: the target's unique index refuses the second.
    await db["users"].create_index("first_name", unique=True, name="users_first_name_once")
    before = {name: await _snapshot(db, name) for name in ("users", "investments")}
    names_before = sorted(await db.list_collection_names())

    with pytest.raises(CommandRefused) as caught:
        await ops.restore(db, path, replace=True, safety_directory=tmp_path / "safety")

    message = str(caught.value)
    (safety,) = (tmp_path / "safety").iterdir()
    assert str(safety) in message
    assert "\n" not in message and len(message.replace(str(safety), "")) < 320
    assert "users" in message and "E11000" in message and "nothing was replaced" in message
    assert ops.verify_file(safety).entry("users").count == 2
    assert {name: await _snapshot(db, name) for name in ("users", "investments")} == before
    assert sorted(await db.list_collection_names()) == names_before  # no leftovers

    assert ops.restore_main([str(path), "--replace", "--json"], settings=settings) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert "\n" not in error["message"] and "safety backup" in error["message"]
    assert {name: await _snapshot(db, name) for name in ("users", "investments")} == before


async def test_replace_keeps_the_collections_validator_and_indexes(
        synced_db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    db = synced_db
    await db["users"].insert_many([f.user(0, user_type="admin"), f.user(1), f.legacy_user(2)],
                                  bypass_document_validation=True)
    path = tmp_path / "b.jsonl.gz"
    await ops.backup(db, path, collections=["users", "sessions"])

    async def shape(name: str) -> tuple[Any, Any]:
        (info,) = [c async for c in await db.list_collections(filter={"name": name})]
        return info["options"], await db[name].index_information()

    shapes = {name: await shape(name) for name in ("users", "sessions")}
    before = await _snapshot(db, "users")

    report = await ops.restore(db, path, replace=True, safety_directory=tmp_path)

    assert report.restored == {"users": 3, "sessions": 0}
    assert await _snapshot(db, "users") == before
    assert {name: await shape(name) for name in ("users", "sessions")} == shapes
    with pytest.raises(WriteError):
        await db["users"].insert_one({"username": "no-schema"})
