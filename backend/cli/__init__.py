"""`fidus`: the operator's command, one subcommand per data script, sync job and check.

    fidus verify                    # integrity check; exit 1 when a check fails
    fidus validate-data --fix       # migrate legacy users, then report schema problems
    fidus verify --help             # every option of one command

Each subcommand hands its arguments unchanged to the `main(argv)` of the backend module that
does the work (the same function `python -m scripts.<name>` and the Makefile reach), so options,
`--json`, progress bars and summary tables are defined once, beside the code they drive.

Exit codes reach the caller unchanged: 0 clean, 1 findings left (problems reported, duplicates
found, drift, failed accounts), 2 error (refused, database unavailable, bad arguments).

Adding a command is one entry in COMMANDS: its name, the `module:function` taking `argv` (and an
optional keyword-only `settings`) and returning the exit code, and a one-line summary.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer

from backend.ops._cli import EXIT_ERROR, invoked_as
from backend.settings import Settings

PROG = "fidus"

DATABASE = "Database"
MT5 = "MT5"
MONEY = "Money"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    target: str  # "package.module:function", imported only when the command runs
    summary: str
    panel: str = DATABASE
    leading_args: tuple[str, ...] = ()  # arguments put before the operator's (worker = sync --loop)


COMMANDS: tuple[Command, ...] = (
    Command("indexes", "backend.cli.indexes:main",
            "Create collections, validators and indexes from schemas/; name the documents that "
            "block an index."),
    Command("migrate", "backend.ops.migrations:main",
            "Apply pending migrations under a lock (--down VERSION reverts, --status lists)."),
    Command("validate-data", "backend.ops.validate:main",
            "Report documents that break their schema (--fix migrates legacy users)."),
    Command("dedupe", "backend.ops.dedupe:main",
            "Quarantine duplicate investments (--rollback RUN_ID puts them back)."),
    Command("verify", "backend.ops.verify:main",
            "Integrity check: references, money against MT5 equity, duplicates. Reads only."),
    Command("seed", "backend.ops.seed:main",
            "Seed a data set: --state empty|dev|demo|test. Never in production."),
    Command("backup", "backend.ops.backup:backup_main",
            "Back up the database to one gzip file with a checksummed manifest (encrypted "
            "with BACKUP_ENCRYPTION_KEY when set)."),
    Command("restore", "backend.ops.backup:restore_main",
            "Restore a backup file after checking its manifest."),
    Command("restore-drill", "backend.ops.restore_drill:main",
            "Restore the newest backup into a scratch database, compare, verify, drop it."),
    Command("sync", "backend.sync.cli:main",
            "One MT5 sync pass over every active account mapping.", panel=MT5),
    Command("worker", "backend.sync.cli:main",
            "The worker: MT5 sync every SYNC_INTERVAL_SECONDS, scheduled backups and drills.",
            panel=MT5, leading_args=("--loop",)),
    Command("reconcile", "backend.sync.reconcile_cli:main",
            "MT5 deposits and withdrawals against recorded investments.", panel=MT5),
    Command("lifecycle", "backend.ops.lifecycle:main",
            "Apply the contract lifecycle transitions due today (the worker runs it daily).",
            panel=MONEY),
    Command("statements", "backend.ops.statements:main",
            "Every client's statement (PDF and JSON) for a period: --period 2026-10.",
            panel=MONEY),
)

EPILOG = ("Exit codes: 0 clean, 1 findings left, 2 error. "
          "`fidus COMMAND --help` lists a command's options; `--json` prints one JSON object.")

app = typer.Typer(
    name=PROG,
    help="Fidus operator commands: database upkeep, integrity checks, the MT5 sync and the "
         "money engine's passes.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"{PROG} {version(PROG)}")
        except PackageNotFoundError:
            typer.echo(f"{PROG} (not installed: run `make install`)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Fidus operator commands: database upkeep, integrity checks, the MT5 sync and the money
    engine's passes."""


def _load(target: str) -> Callable[..., int]:
    module_name, _, function_name = target.partition(":")
    function: Callable[..., int] = getattr(importlib.import_module(module_name), function_name)
    return function


def run(command: Command, argv: Sequence[str], *, settings: Settings | None = None) -> int:
    """Run one command's `main` as `fidus NAME`, returning its exit code.

    argparse leaves through SystemExit for `--help` (0) and for a usage error (2); both become
    the return value, so a caller always gets a number.
    """
    main = _load(command.target)
    arguments = [*command.leading_args, *argv]
    keywords: dict[str, Any] = {}
    if settings is not None and "settings" in inspect.signature(main).parameters:
        keywords["settings"] = settings
    token = invoked_as.set(f"{PROG} {command.name}")
    try:
        return main(arguments, **keywords)
    except SystemExit as exited:
        code = exited.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    finally:
        invoked_as.reset(token)


def _register(command: Command) -> None:
    def invoke(ctx: typer.Context) -> None:
        settings = ctx.obj if isinstance(ctx.obj, Settings) else None
        raise typer.Exit(run(command, ctx.args, settings=settings))

    app.command(
        command.name,
        help=f"{command.summary}\n\nOptions: `fidus {command.name} --help`.",
        short_help=command.summary,
        rich_help_panel=command.panel,
        # The command's own parser reads every argument, --help included.
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(invoke)


for _command in COMMANDS:
    _register(_command)


def main() -> None:
    """The `fidus` console script."""
    app()
