"""The `fidus` command: every operator command under one name, exit codes that reach the caller,
tables that stay narrow, and `fidus indexes` naming what blocks an index on a legacy database."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Console
from typer.testing import CliRunner

from backend.cli import COMMANDS, app
from backend.ops._cli import Outcome, _print_outcome, fold_ids, table_cell
from backend.settings import Settings
from tests import ops_factories as f

REPO_ROOT = Path(__file__).resolve().parents[1]


async def fidus(args: Sequence[str], settings: Settings) -> tuple[int, str]:
    """`fidus ARGS` in process (its own event loop, as from a shell); exit code and stdout."""
    def invoke() -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), obj=settings)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout

    return await asyncio.to_thread(invoke)


def orphan_investment(db_admin: ObjectId) -> dict[str, Any]:
    return f.investment(ObjectId(), db_admin, n=999_001)


# the command itself ------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command.name in result.stdout
    assert "0 clean, 1 findings left, 2 error" in result.stdout


def test_a_commands_help_is_its_own_parser_under_the_fidus_name() -> None:
    result = CliRunner().invoke(app, ["validate-data", "--help"])
    assert result.exit_code == 0
    assert "usage: fidus validate-data" in result.stdout
    assert "--fix" in result.stdout and "--json" in result.stdout


def test_worker_is_sync_with_loop() -> None:
    result = CliRunner().invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    assert "usage: fidus worker" in result.stdout and "--concurrency" in result.stdout


def test_usage_error_exits_2_with_json(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["dedupe", "--json", "--keep", "middle"], obj=settings)
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and payload["error"]["code"] == "USAGE"


def test_unknown_command_exits_2() -> None:
    assert CliRunner().invoke(app, ["verfy"]).exit_code == 2


async def test_verify_exits_0_on_a_demo_seed_and_1_once_a_reference_breaks(
        settings: Settings, db: AsyncDatabase[dict[str, Any]]) -> None:
    assert (await fidus(["seed", "--state", "demo", "--json"], settings))[0] == 0
    code, out = await fidus(["verify", "--json"], settings)
    assert code == 0, out
    assert json.loads(out)["ok"] is True

    admin = await db["users"].find_one({"user_type": "admin"})
    assert admin is not None
    orphan = orphan_investment(admin["_id"])
    await db["investments"].insert_one(orphan)

    code, out = await fidus(["verify", "--json"], settings)
    assert code == 1
    failed = {c["name"]: c for c in json.loads(out)["checks"] if c["failed"]}
    assert failed["investments.client_id -> users"]["sample_ids"] == [str(orphan["_id"])]


async def test_unreachable_database_exits_2(settings: Settings) -> None:
    unreachable = settings.model_copy(update={
        "mongodb_uri": SecretStr("mongodb://127.0.0.1:9/?directConnection=true"),
        "mongodb_server_selection_timeout_ms": 200, "mongodb_connect_timeout_ms": 200,
        "mongodb_connect_attempts": 1})
    code, out = await fidus(["verify", "--json"], unreachable)
    assert code == 2
    assert json.loads(out)["exit_code"] == 2


# the installed console script -------------------------------------------------------------


def _console_script() -> Path:
    try:
        metadata.distribution("fidus")
    except metadata.PackageNotFoundError:
        pytest.skip("the project is not installed in this environment: run `make install`")
    scripts = metadata.entry_points(group="console_scripts", name="fidus")
    assert [entry.value for entry in scripts] == ["backend.cli:main"]
    path = Path(sys.executable).with_name("fidus")
    assert path.exists(), f"{path} is missing: run `make install`"
    return path


async def test_installed_console_script_passes_exit_codes_to_its_caller(
        mongo_uri: str, db_name: str, db: AsyncDatabase[dict[str, Any]],
        tmp_path: Path) -> None:
    script = _console_script()
    environment = {
        **os.environ,
        "FIDUS_ENV": "test", "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": db_name,
        "BCRYPT_ROUNDS": "4",
        # This checkout's code, whichever checkout the editable install points at.
        "PYTHONPATH": str(REPO_ROOT),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120, check=False)

    seeded = await asyncio.to_thread(run, "seed", "--state", "demo")
    assert seeded.returncode == 0, seeded.stderr
    clean = await asyncio.to_thread(run, "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "checks passed" in clean.stdout

    admin = await db["users"].find_one({"user_type": "admin"})
    assert admin is not None
    await db["investments"].insert_one(orphan_investment(admin["_id"]))

    broken = await asyncio.to_thread(run, "verify")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "FAIL investments.client_id -> users" in broken.stdout

    misused = await asyncio.to_thread(run, "verify", "--bogus")
    assert misused.returncode == 2
    assert "usage: fidus verify" in misused.stderr


# tables ------------------------------------------------------------------------------------


def test_a_long_id_list_folds_into_the_first_id_and_a_count() -> None:
    ids = [str(ObjectId()) for _ in range(5)]
    assert fold_ids(ids) == f"{ids[0]} (+4 more)"
    assert table_cell(", ".join(ids)) == f"{ids[0]} (+4 more)"
    assert table_cell(ids[:1]) == ids[0]
    assert table_cell("duplicate investments (client, fund, amount)") == (
        "duplicate investments (client, fund, amount)")


@pytest.mark.parametrize("width", [80, 100])
def test_a_findings_table_fits_the_terminal_and_keeps_ids_whole(width: int) -> None:
    ids = [str(ObjectId()) for _ in range(5)]
    outcome = Outcome(
        title="integrity: 1 of 3 checks failed",
        columns=("check", "checked", "failed", "sample ids"),
        rows=[("crm_prospects.converted_client_id -> users", 1200, 5, ", ".join(ids)),
              ("duplicate investments (client, fund, amount, deposit date)", 1200, 0, ""),
              ("investment current_value vs MT5 equity", 40, 0, "")],
        data={})
    console = Console(width=width, file=io.StringIO())
    _print_outcome(outcome, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= width
    assert ids[0] in text and "(+4 more)" in text  # the id on one line, never folded
    assert all(other not in text for other in ids[1:])
    assert "1200" in text


# fidus indexes on a legacy database ---------------------------------------------------------


async def test_indexes_names_the_documents_that_block_an_index_and_the_fixing_command(
        settings: Settings, db: AsyncDatabase[dict[str, Any]], tmp_path: Path) -> None:
    admin, client = f.user(0, user_type="admin"), f.user(1)
    legacy = [f.legacy_user(i) for i in range(2, 5)]  # no user_id: null for the unique index
    await db["users"].insert_many([admin, client, *legacy])
    kept = f.investment(client["_id"], admin["_id"], n=1)
    twin = f.investment(client["_id"], admin["_id"], n=2, created_at=f.T0.replace(hour=10))
    await db["investments"].insert_many([kept, twin])

    code, out = await fidus(["indexes", "--json"], settings)
    assert code == 2
    report = json.loads(out)
    blocked = {b["index"]: b for b in report["blocked"]}
    assert set(blocked) == {"users_user_id_unique", "investments_no_duplicate"}
    users = blocked["users_user_id_unique"]
    assert (users["documents"], users["key_values"], users["legacy_documents"]) == (3, 1, 3)
    assert set(users["sample_ids"]) == {str(doc["_id"]) for doc in legacy}
    assert users["fix"].startswith("fidus validate-data --fix")
    investments = blocked["investments_no_duplicate"]
    assert set(investments["sample_ids"]) == {str(kept["_id"]), str(twin["_id"])}
    assert "fidus dedupe" in investments["fix"]
    # The blocked indexes were not attempted; every other one was built.
    user_indexes = await db["users"].index_information()
    assert "users_user_id_unique" not in user_indexes and "users_email_unique" in user_indexes

    code, text = await fidus(["indexes", "--dry-run"], settings)
    assert code == 1
    assert "blocked: users.users_user_id_unique: 3 documents share 1 key value" in text
    assert "fix: fidus validate-data --fix" in text

    # The README's order for an existing database clears it.
    assert (await fidus(["validate-data", "--fix", "--backup-dir", str(tmp_path)],
                        settings))[0] in (0, 1)
    assert (await fidus(["dedupe", "--json"], settings))[0] == 0
    code, out = await fidus(["indexes", "--json"], settings)
    report = json.loads(out)
    assert report["blocked"] == []
    # The legacy collections have no validator yet; only a real MongoDB accepts collMod.
    errors = [error for row in report["collections"] for error in row["errors"]]
    assert all(error.startswith("collMod") for error in errors), errors
    assert code == (2 if errors else 0)
    assert "users_user_id_unique" in await db["users"].index_information()
    assert await db["investments"].count_documents({}) == 1


async def test_a_case_insensitive_unique_index_counts_emails_that_differ_only_in_case(
        settings: Settings, db: AsyncDatabase[dict[str, Any]]) -> None:
    first = f.user(1, email="Ana@Fidus.test")
    second = f.user(2, email="ana@fidus.test")
    await db["users"].insert_many([first, second, f.user(3)])

    code, out = await fidus(["indexes", "--json"], settings)
    assert code == 2
    (blocker,) = json.loads(out)["blocked"]
    assert blocker["index"] == "users_email_unique"
    assert set(blocker["sample_ids"]) == {str(first["_id"]), str(second["_id"])}
    assert blocker["fix"].startswith("no command merges these")
