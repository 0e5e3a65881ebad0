"""`make indexes`: create collections, validators and indexes declared in `schemas/`.

Exit codes: 0 in sync, 1 drift left (or, with --dry-run, changes pending), 2 error. `--json`
prints one object on stdout, in the data scripts' shape (`ok`, `exit_code`, and on error
`error: {code, message}`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from backend.db import index_sync
from backend.db.connection import ConnectionManager
from backend.db.schema_registry import SchemaFileError
from backend.errors import FidusError
from backend.ops._cli import ArgumentParser, UsageError, error_line, error_payload, parse_arguments
from backend.settings import Settings, get_settings

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="create_indexes",
        description=(
            "Bring the database in line with schemas/*.json: create missing collections with "
            "their validators, update changed validators (collMod), create missing indexes and "
            "report drift (an index with a declared name but another specification, or one "
            "nobody declared). Nothing is dropped without --allow-drop."
        ),
        epilog="exit codes: 0 in sync, 1 drift left (or changes pending with --dry-run), 2 error",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--allow-drop",
        action="store_true",
        help="drop drifted and undeclared indexes (recreating the declared ones)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


async def run(settings: Settings, *, dry_run: bool, allow_drop: bool) -> index_sync.SyncReport:
    async with ConnectionManager.from_settings(settings) as manager:
        db = manager.database
        sync_plan = await index_sync.plan(db)
        return await index_sync.apply(db, sync_plan, allow_drop=allow_drop, dry_run=dry_run)


def _print_report(report: index_sync.SyncReport, console: Console, plan_lines: list[str]) -> None:
    for line in plan_lines:
        console.print(line, markup=False)
    title = "Index sync (dry run: nothing changed)" if report.dry_run else "Index sync"
    table = Table(title=title)
    table.add_column("collection", no_wrap=True)
    for column in ("declared", "present", "created", "drifted", "dropped"):
        table.add_column(column, justify="right")
    table.add_column("validator", no_wrap=True)
    for row in report.rows:
        table.add_row(
            row.collection,
            str(row.declared),
            str(row.present),
            str(row.created),
            str(row.drifted),
            str(row.dropped),
            row.validator,
        )
    table.add_section()
    table.add_row(
        "total",
        str(sum(row.declared for row in report.rows)),
        str(sum(row.present for row in report.rows)),
        str(report.created),
        str(report.drifted),
        str(sum(row.dropped for row in report.rows)),
        "",
    )
    console.print(table)
    for error in report.errors:
        console.print(f"[bold red]error[/bold red] {error}", highlight=False)


def _plan_lines(report: index_sync.SyncReport) -> list[str]:
    lines = [f"drift: {d.collection}.{d.name} ({d.kind.value}): {d.detail}" for d in report.drift]
    if report.dry_run:
        lines = (
            [
                f"would create {row.created} index(es) in {row.collection}"
                for row in report.rows
                if row.created
            ]
            + [
                f"would {row.validator.removeprefix('would ')} the validator of {row.collection}"
                for row in report.rows
                if row.validator.startswith("would")
            ]
            + lines
        )
    return lines


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    try:
        args = parse_arguments(build_parser(), argv)
    except UsageError as error:
        print(json.dumps(error_payload("USAGE", error_line(error))))
        return EXIT_ERROR
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        resolved = settings if settings is not None else get_settings()
        report = asyncio.run(run(resolved, dry_run=args.dry_run, allow_drop=args.allow_drop))
    except (FidusError, PyMongoError, SchemaFileError, OSError) as error:
        code = error.code if isinstance(error, FidusError) else type(error).__name__
        message = error_line(error)
        if args.json:
            print(json.dumps(error_payload(code, message)))
        else:
            err.print(f"[bold red]error[/bold red] ({code}): {message}")
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"ok": report.exit_code == 0, **report.as_dict()}))
    else:
        _print_report(report, out, _plan_lines(report))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
