"""`fidus indexes`: create collections, validators and indexes declared in `schemas/`.

Before creating a unique index it looks for the documents that would make the server refuse it
(two or more documents with the same key under the index's filter and collation) and, instead of
a bare E11000, names them: the index, how many documents share how many key values, sample ids,
and the command that fixes them (`fidus validate-data --fix` for legacy users without a
user_id, `fidus dedupe` for duplicate investments). A blocked index is not attempted; the others
are still created.

Exit codes: 0 in sync, 1 drift left (or, with --dry-run, changes pending), 2 error (an index
blocked or refused, the database unavailable). `--json` prints one object on stdout, in the data
scripts' shape (`ok`, `exit_code`, and on error `error: {code, message}`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import bson
from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from backend.db import index_sync
from backend.db.connection import ConnectionManager
from backend.db.schema_registry import IndexSpec, SchemaFileError
from backend.errors import FidusError
from backend.ops._cli import (
    ArgumentParser,
    UsageError,
    error_line,
    error_payload,
    fold_ids,
    invoked_as,
    jsonable,
    parse_arguments,
)
from backend.settings import Settings, get_settings

EXIT_ERROR = 2
SAMPLE_IDS = 5

#: The command that clears the duplicates blocking an index, where one exists.
FIXES: Mapping[tuple[str, str], str] = {
    ("users", "users_user_id_unique"):
        "fidus validate-data --fix (gives legacy users their user_id; backs users up first)",
    ("investments", "investments_no_duplicate"):
        "fidus dedupe --dry-run, then fidus dedupe (quarantines the later duplicates; "
        "--rollback RUN_ID puts them back)",
}
FIX_LEGACY_USERS = FIXES[("users", "users_user_id_unique")]
FIX_BY_HAND = ("no command merges these: correct or remove the duplicates by hand after "
               "`fidus backup`, then rerun `fidus indexes`")


@dataclass(slots=True)
class Blocker:
    """Documents whose shared key keeps a declared unique index from being built."""

    collection: str
    index: str
    keys: tuple[str, ...]
    key_values: int = 0  # distinct key values held by more than one document
    documents: int = 0  # documents holding those values
    sample_key: dict[str, Any] = field(default_factory=dict)
    sample_ids: list[Any] = field(default_factory=list)
    legacy_documents: int = 0
    fix: str = FIX_BY_HAND

    def describe(self) -> str:
        key = ", ".join(f"{k}={v!r}" for k, v in jsonable(self.sample_key).items())
        return (f"blocked: {self.collection}.{self.index}: {self.documents} documents share "
                f"{self.key_values} key value(s), e.g. {key}: "
                f"{fold_ids([str(i) for i in self.sample_ids], shown=2)}")

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "index": self.index, "keys": list(self.keys),
                "key_values": self.key_values, "documents": self.documents,
                "sample_key": jsonable(self.sample_key),
                "sample_ids": [str(i) for i in self.sample_ids],
                "legacy_documents": self.legacy_documents, "fix": self.fix}


def _case_insensitive(spec: IndexSpec) -> bool:
    collation = spec.collation or {}
    return int(collation.get("strength", 3)) <= 2


def _key_part(value: Any, *, case_insensitive: bool) -> Any:
    """A value as the index compares it: missing and null alike, numbers by value."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("string", value.casefold() if case_insensitive else value)
    if isinstance(value, Decimal128):
        return ("number", value.to_decimal())
    if isinstance(value, int | float | Decimal):
        return ("number", Decimal(str(value)))
    if isinstance(value, datetime | bson.ObjectId):
        return (type(value).__name__, value)
    return ("bson", bson.encode({"v": value}))


def _field(doc: Mapping[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


async def find_blocker(
    db: AsyncDatabase[dict[str, Any]], collection: str, spec: IndexSpec
) -> Blocker | None:
    """The documents that share a key of the unique index `spec`, or None when it can be built.

    Reads the key fields of the documents under the index's filter once (an operator command,
    run only while the index is missing) and counts them as the index would: missing equals
    null, a strength 1-2 collation ignores case.
    """
    keys = tuple(name for name, _ in spec.keys)
    case_insensitive = _case_insensitive(spec)
    projection = dict.fromkeys(keys, 1) | {"type": 1}
    seen: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    async for doc in db[collection].find(dict(spec.partial_filter or {}), projection):
        values = [_field(doc, name) for name in keys]
        if spec.sparse and all(v is None for v in values):
            continue
        key = tuple(_key_part(v, case_insensitive=case_insensitive) for v in values)
        seen.setdefault(key, []).append(doc)
    groups = [docs for docs in seen.values() if len(docs) > 1]
    if not groups:
        return None
    first = groups[0]
    blocker = Blocker(
        collection=collection, index=spec.name, keys=keys, key_values=len(groups),
        documents=sum(len(docs) for docs in groups),
        sample_key={name: _field(first[0], name) for name in keys},
        sample_ids=[doc.get("_id") for doc in first[:SAMPLE_IDS]],
        legacy_documents=sum(1 for docs in groups for doc in docs if "type" in doc)
        if collection == "users" else 0,
    )
    blocker.fix = FIXES.get((collection, spec.name), FIX_BY_HAND)
    if blocker.legacy_documents and blocker.fix == FIX_BY_HAND:
        blocker.fix = f"{FIX_LEGACY_USERS}; then, if duplicates remain, {FIX_BY_HAND}"
    return blocker


async def find_blockers(
    db: AsyncDatabase[dict[str, Any]], sync_plan: index_sync.SyncPlan, *, allow_drop: bool = False
) -> list[Blocker]:
    """Every unique index the plan would build that the data already refuses."""
    found: list[Blocker] = []
    for item in sync_plan.collections:
        if not item.exists:
            continue
        specs = list(item.to_create)
        if allow_drop:
            specs += [d.declared for d in item.drift if d.declared is not None]
        for spec in specs:
            if spec.unique:
                blocker = await find_blocker(db, item.name, spec)
                if blocker is not None:
                    found.append(blocker)
    return found


@dataclass(slots=True)
class IndexRun:
    report: index_sync.SyncReport
    blockers: list[Blocker]

    @property
    def exit_code(self) -> int:
        if self.blockers and not self.report.dry_run:
            return EXIT_ERROR
        return max(self.report.exit_code, 1 if self.blockers else 0)

    def as_dict(self) -> dict[str, Any]:
        return {**self.report.as_dict(), "exit_code": self.exit_code,
                "blocked": [b.as_dict() for b in self.blockers]}


def _hold_back(sync_plan: index_sync.SyncPlan, blockers: Sequence[Blocker]) -> None:
    """Take blocked indexes out of the plan, so the server is not asked to build them."""
    blocked = {(b.collection, b.index) for b in blockers}
    for item in sync_plan.collections:
        item.to_create = [s for s in item.to_create if (item.name, s.name) not in blocked]
        # With --allow-drop a blocked declared index must not replace the one in place.
        item.drift = [d for d in item.drift
                      if d.declared is None or (item.name, d.declared.name) not in blocked]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=invoked_as.get() or "fidus indexes",
        description=(
            "Bring the database in line with schemas/*.json: create missing collections with "
            "their validators, update changed validators (collMod), create missing indexes and "
            "report drift (an index with a declared name but another specification, or one "
            "nobody declared). Nothing is dropped without --allow-drop. A unique index that "
            "existing documents would break is not attempted: the documents are named with the "
            "command that fixes them.\n\n"
            "On an existing database: fidus backup, fidus validate-data --fix, fidus dedupe, "
            "fidus indexes, fidus migrate."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 in sync, 1 drift left (or changes pending with --dry-run), "
               "2 error (an index blocked or refused)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--allow-drop",
        action="store_true",
        help="drop drifted and undeclared indexes (recreating the declared ones)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


async def run(settings: Settings, *, dry_run: bool, allow_drop: bool) -> IndexRun:
    async with ConnectionManager.from_settings(settings) as manager:
        db = manager.database
        sync_plan = await index_sync.plan(db)
        blockers = await find_blockers(db, sync_plan, allow_drop=allow_drop)
        if not dry_run:
            _hold_back(sync_plan, blockers)
        report = await index_sync.apply(db, sync_plan, allow_drop=allow_drop, dry_run=dry_run)
        return IndexRun(report, blockers)


def _print_report(outcome: IndexRun, console: Console) -> None:
    report = outcome.report
    for line in _plan_lines(report):
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
    for blocker in outcome.blockers:
        console.print(f"[bold red]{blocker.describe()}[/bold red]", highlight=False)
        console.print(f"  fix: {blocker.fix}", highlight=False, markup=False)
    if outcome.blockers:
        console.print("On an existing database run, in this order: fidus backup, "
                      "fidus validate-data --fix, fidus dedupe, fidus indexes, fidus migrate.",
                      highlight=False, markup=False)


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
        outcome = asyncio.run(run(resolved, dry_run=args.dry_run, allow_drop=args.allow_drop))
    except (FidusError, PyMongoError, SchemaFileError, OSError) as error:
        code = error.code if isinstance(error, FidusError) else type(error).__name__
        message = error_line(error)
        if args.json:
            print(json.dumps(error_payload(code, message)))
        else:
            err.print(f"[bold red]error[/bold red] ({code}): {message}")
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"ok": outcome.exit_code == 0, **outcome.as_dict()}))
    else:
        _print_report(outcome, out)
    return outcome.exit_code
