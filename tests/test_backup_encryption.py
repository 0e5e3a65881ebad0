"""Encrypted backups: sealed with the first BACKUP_ENCRYPTION_KEY, opened by any configured one,
and a tampered, truncated or wrongly keyed file refused in one line, with nothing written."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from backend.ops import backup as ops
from backend.ops import backup_cipher
from backend.ops.backup_cipher import BackupKeys, decode_key
from backend.settings import Settings
from tests import ops_factories as f
from tests.support import make_settings

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def one_line(text: str) -> str:
    """The only non-blank line of `text` (a transient progress bar may leave a blank one)."""
    (line,) = [line for line in text.splitlines() if line.strip()]
    return line


def keys(*texts: str) -> BackupKeys:
    return BackupKeys([decode_key(text) for text in texts])


async def _fill(db: AsyncDatabase[dict[str, Any]]) -> None:
    admin, client = f.user(0, user_type="admin"), f.user(1, email="ana.secret@fidus.test")
    await db["users"].insert_many([admin, client])
    await db["investments"].insert_many(
        [f.investment(client["_id"], admin["_id"], n=n) for n in range(1, 6)])


async def _snapshot(db: AsyncDatabase[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [doc async for doc in db[name].find({}, sort=[("_id", 1)])]


@pytest.fixture
async def target(mongo_client: AsyncMongoClient[dict[str, Any]], db_name: str
                 ) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A second, empty database to restore into."""
    name = f"{db_name}_target"
    yield mongo_client.get_database(name)
    await mongo_client.drop_database(name)


def _cli_settings(mongo_uri: str, database: str, tmp_path: Path, *keys_: str) -> Settings:
    return make_settings(mongo_uri, database, backup_encryption_key=",".join(keys_),
                         backup_directory=tmp_path / "backups")


async def test_an_encrypted_backup_restores_exactly_and_shows_no_client_data(
        db: AsyncDatabase[dict[str, Any]], target: AsyncDatabase[dict[str, Any]],
        tmp_path: Path) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz.enc"
    manifest = await ops.backup(db, path, collections=["users", "investments"],
                                keys=keys(NEW_KEY))
    raw = path.read_bytes()
    assert manifest.encrypted and raw.startswith(backup_cipher.MAGIC)
    assert b"ana.secret" not in raw and b"\x1f\x8b" not in raw[:64]

    report = await ops.restore(target, ops.BackupSource(path, keys(NEW_KEY)))
    assert report.restored == {"users": 2, "investments": 5}
    for name in ("users", "investments"):
        assert await _snapshot(target, name) == await _snapshot(db, name)


async def test_a_file_sealed_with_an_older_key_opens_while_that_key_is_listed(
        db: AsyncDatabase[dict[str, Any]], target: AsyncDatabase[dict[str, Any]],
        tmp_path: Path) -> None:
    await _fill(db)
    old_file = tmp_path / "old.jsonl.gz.enc"
    await ops.backup(db, old_file, collections=["users"], keys=keys(OLD_KEY))
    rotated = keys(NEW_KEY, OLD_KEY)
    new_file = tmp_path / "new.jsonl.gz.enc"
    await ops.backup(db, new_file, collections=["users"], keys=rotated)

    # The newest key seals; each file names the key that sealed it.
    assert new_file.read_bytes()[8:20].decode() == rotated.current_id
    assert old_file.read_bytes()[8:20].decode() == keys(OLD_KEY).current_id
    assert ops.verify_file(ops.BackupSource(old_file, rotated)).entry("users").count == 2
    with pytest.raises(ops.BackupKeyMismatch, match="not among BACKUP_ENCRYPTION_KEY"):
        ops.verify_file(ops.BackupSource(old_file, keys(NEW_KEY)))


async def test_many_chunks_stream_through_and_reordered_chunks_are_refused(
        db: AsyncDatabase[dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_cipher, "CHUNK_SIZE", 64)
    await _fill(db)
    path = tmp_path / "b.jsonl.gz.enc"
    await ops.backup(db, path, keys=keys(NEW_KEY))
    source = ops.BackupSource(path, keys(NEW_KEY))
    assert ops.verify_file(source).entry("investments").count == 5

    data = path.read_bytes()
    header, chunks, at = data[:backup_cipher.HEADER_LENGTH], [], backup_cipher.HEADER_LENGTH
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append(data[at:at + 4 + length])
        at += 4 + length
    assert len(chunks) > 5
    chunks[1], chunks[2] = chunks[2], chunks[1]
    path.write_bytes(header + b"".join(chunks))
    with pytest.raises(ops.BackupCorrupt, match="fails authentication"):
        ops.verify_file(source)
    path.write_bytes(header + b"".join(chunks[:1] + chunks[3:]))
    with pytest.raises(ops.BackupCorrupt, match="fails authentication"):
        ops.verify_file(source)


@pytest.mark.parametrize("damage", ["flip a byte", "cut the end", "swap the key id"])
async def test_restore_refuses_a_tampered_file_in_one_line_and_writes_nothing(
        db: AsyncDatabase[dict[str, Any]], target: AsyncDatabase[dict[str, Any]],
        mongo_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz.enc"
    await ops.backup(db, path, keys=keys(NEW_KEY))
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "cut the end":
        del data[-20:]
    else:
        data[8:20] = keys(OLD_KEY).current_id.encode()
    path.write_bytes(bytes(data))
    settings = _cli_settings(mongo_uri, target.name, tmp_path, NEW_KEY, OLD_KEY)

    assert ops.restore_main([str(path)], settings=settings) == 2
    err = one_line(capsys.readouterr().err)
    assert "BACKUP_CORRUPT" in err
    assert ("fails authentication" in err) or ("truncated" in err)
    assert await target.list_collection_names() == []

    assert ops.restore_main([str(path), "--json"], settings=settings) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "BACKUP_CORRUPT"
    assert await target.list_collection_names() == []


async def test_restore_refuses_a_wrongly_keyed_file_in_one_line_and_writes_nothing(
        db: AsyncDatabase[dict[str, Any]], target: AsyncDatabase[dict[str, Any]],
        mongo_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _fill(db)
    path = tmp_path / "b.jsonl.gz.enc"
    await ops.backup(db, path, keys=keys(OLD_KEY))

    assert ops.restore_main([str(path)], settings=_cli_settings(
        mongo_uri, target.name, tmp_path, NEW_KEY)) == 2
    err = one_line(capsys.readouterr().err)
    assert f"encrypted with key {keys(OLD_KEY).current_id}" in err
    assert "BACKUP_KEY_MISMATCH" in err
    assert ops.restore_main([str(path)], settings=make_settings(mongo_uri, target.name)) == 2
    assert "BACKUP_ENCRYPTION_KEY is not set" in capsys.readouterr().err
    assert await target.list_collection_names() == []


async def test_an_unencrypted_file_needs_allow_unencrypted_where_keys_are_set(
        db: AsyncDatabase[dict[str, Any]], target: AsyncDatabase[dict[str, Any]],
        mongo_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _fill(db)
    path = tmp_path / "plain.jsonl.gz"
    await ops.backup(db, path, collections=["users"])
    assert gzip.decompress(path.read_bytes()).startswith(b'{"fidus_backup": ')
    settings = _cli_settings(mongo_uri, target.name, tmp_path, NEW_KEY)

    assert ops.restore_main([str(path), "--json"], settings=settings) == 2
    assert "not encrypted" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert await target.list_collection_names() == []
    assert ops.restore_main([str(path), "--allow-unencrypted", "--json"],
                            settings=settings) == 0
    assert json.loads(capsys.readouterr().out)["restored"] == {"users": 2}


async def test_make_backup_encrypts_with_the_configured_key_and_records_the_run(
        db: AsyncDatabase[dict[str, Any]], mongo_uri: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await _fill(db)
    settings = _cli_settings(mongo_uri, db.name, tmp_path, NEW_KEY)
    assert ops.backup_main(["--json"], settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    path = Path(out["path"])
    assert out["encrypted"] is True and path.name.endswith(".jsonl.gz.enc")
    assert path.parent == tmp_path / "backups"
    assert out["consistency"] == "sequential"
    # Every declared collection is in the file, the absent ones empty.
    assert out["collections"]["backup_runs"]["count"] == 0
    assert out["collections"]["mt5_deals"]["count"] == 0
    runs = [run async for run in db["backup_runs"].find({})]
    assert len(runs) == 1
    assert (runs[0]["kind"], runs[0]["trigger"], runs[0]["outcome"]) == (
        "backup", "manual", "succeeded")
    assert runs[0]["encrypted"] is True and runs[0]["complete"] is True
    assert runs[0]["documents"] == 7 and runs[0]["file"] == str(path)


def test_keys_must_be_32_bytes_and_production_requires_one() -> None:
    with pytest.raises(ValidationError, match=r"BACKUP_ENCRYPTION_KEY\[1\] decodes to 16 bytes"):
        Settings(_env_file=None,  # type: ignore[call-arg]
                 backup_encryption_key=f"{NEW_KEY},{base64.urlsafe_b64encode(b'x' * 16).decode()}")
    with pytest.raises(ValidationError, match="not url-safe base64"):
        Settings(_env_file=None, backup_encryption_key="not a key!")  # type: ignore[call-arg]
    settings = Settings(_env_file=None, backup_encryption_key=f" {NEW_KEY} , {OLD_KEY}")  # type: ignore[call-arg]
    loaded = BackupKeys.from_settings(settings)
    assert loaded is not None and loaded.ids == [keys(NEW_KEY).current_id,
                                                 keys(OLD_KEY).current_id]
    assert BackupKeys.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
