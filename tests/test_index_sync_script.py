"""`scripts/create_indexes.py` end to end: exit codes, the summary, dry run, JSON output."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from backend.db.schema_registry import get_registry
from scripts.create_indexes import main
from tests.support import make_settings

DECLARED = sum(len(schema.indexes) for schema in get_registry().values())


async def run_script(args: list[str], uri: str, database: str) -> int:
    # The script runs its own event loop, as it does from the command line.
    return await asyncio.to_thread(main, args, settings=make_settings(uri, database))


async def _indexes(client: AsyncMongoClient[dict[str, Any]], database: str, name: str) -> int:
    return len(await client[database][name].index_information())


async def test_dry_run_then_run_then_rerun(
    mongo_uri: str,
    db_name: str,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_script(["--dry-run", "--json"], mongo_uri, db_name) == 1
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True
    assert sum(row["created"] for row in planned["collections"]) == DECLARED
    assert await mongo_client[db_name].list_collection_names() == []

    assert await run_script([], mongo_uri, db_name) == 0
    shown = capsys.readouterr().out
    assert "Index sync" in shown and "investments" in shown
    assert await _indexes(mongo_client, db_name, "investments") == 10

    assert await run_script(["--json"], mongo_uri, db_name) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert sum(row["created"] for row in rerun["collections"]) == 0
    await mongo_client.drop_database(db_name)


async def test_drift_exits_1_and_allow_drop_clears_it(
    mongo_uri: str,
    db_name: str,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_script([], mongo_uri, db_name) == 0
    await mongo_client[db_name]["users"].create_index("phone", name="users_phone_adhoc")
    capsys.readouterr()

    assert await run_script([], mongo_uri, db_name) == 1
    assert "users_phone_adhoc" in capsys.readouterr().out
    assert await _indexes(mongo_client, db_name, "users") == 11

    assert await run_script(["--allow-drop"], mongo_uri, db_name) == 0
    assert await _indexes(mongo_client, db_name, "users") == 10
    await mongo_client.drop_database(db_name)


def test_unreachable_database_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(
        "mongodb://127.0.0.1:9/?directConnection=true",
        "fidus_unreachable",
        mongodb_server_selection_timeout_ms=200,
        mongodb_connect_timeout_ms=200,
        mongodb_connect_attempts=1,
    )
    assert main([], settings=settings) == 2
    captured = capsys.readouterr()
    assert "error" in captured.err
    assert "Traceback" not in captured.err + captured.out
