"""dedupe: duplicate investments by the business rule, moved to quarantine, and rollback.

Two investments are duplicates when they have the same client_id, fund_code, principal_amount
(compared as numbers: 100.0 equals 100.00) and deposit_date, and neither is cancelled (the
rule of the `investments_no_duplicate` index, which legacy databases predate). The oldest
(created_at, then _id) is kept unless `keep="newest"`, except that an investment an MT5 account
points to (`mt5_accounts.investment_id`) is always the one kept, so no account is left pointing
at quarantine. A group in which more than one investment is pointed to is left alone and
reported (exit 1): which account should lose its investment is a person's decision.

A duplicate is first written, whole, to `dedupe_quarantine` under the run id; only then is it
deleted from investments, and only if it is still exactly what was quarantined (the delete
filter names every field), so a document edited meanwhile is never lost: its quarantine record
is withdrawn and it is reported. `rollback(run_id)` inserts the quarantined documents back
unchanged.
"""

from __future__ import annotations

import argparse
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from bson import Decimal128
from pymongo import DeleteOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from backend.models.dedupe_quarantine import QuarantinedDocument, QuarantineSource
from backend.ops._audit import record_each, record_script_run
from backend.ops._cli import (
    CommandRefused,
    Context,
    Outcome,
    ProgressSink,
    base_parser,
    no_progress,
    run_command,
)
from backend.repositories.base import utcnow
from backend.repositories.dedupe_quarantine import DedupeQuarantineRepository
from backend.settings import Settings

RULE = "same client_id, fund_code, principal_amount and deposit_date; not cancelled"
KEY_FIELDS = ("client_id", "fund_code", "principal_amount", "deposit_date")
BATCH_SIZE = 500
_EPOCH = datetime.min.replace(tzinfo=UTC)

Keep = Literal["oldest", "newest"]


def _amount(value: Any) -> Any:
    if isinstance(value, Decimal128):
        return value.to_decimal().normalize()
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def duplicate_key(doc: Mapping[str, Any]) -> tuple[Any, ...] | None:
    if doc.get("status") == "cancelled" or any(doc.get(f) is None for f in KEY_FIELDS):
        return None
    return (doc["client_id"], doc["fund_code"], _amount(doc["principal_amount"]),
            doc["deposit_date"])


def _age(doc: Mapping[str, Any]) -> tuple[datetime, str]:
    created = doc.get("created_at")
    return (created if isinstance(created, datetime) else _EPOCH, str(doc["_id"]))


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    kept: Mapping[str, Any]
    duplicates: tuple[Mapping[str, Any], ...]
    #: The _ids in the group that an MT5 account points to.
    linked: tuple[Any, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.linked) > 1


async def find_duplicates(
    db: AsyncDatabase[dict[str, Any]], *, keep: Keep = "oldest"
) -> list[DuplicateGroup]:
    """Every group of duplicate investments, with the one to keep first."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    async for doc in db["investments"].find({"status": {"$ne": "cancelled"}}):
        key = duplicate_key(doc)
        if key is not None:
            groups[key].append(doc)
    linked_ids = {account["investment_id"] async for account in db["mt5_accounts"].find(
        {"investment_id": {"$ne": None}}, {"investment_id": 1})}
    result = []
    for docs in groups.values():
        if len(docs) > 1:
            ordered = sorted(docs, key=_age, reverse=keep == "newest")
            # sorted() is stable: the linked investment first, the rest in age order.
            ordered.sort(key=lambda doc: doc["_id"] not in linked_ids)
            linked = tuple(doc["_id"] for doc in ordered if doc["_id"] in linked_ids)
            result.append(DuplicateGroup(ordered[0], tuple(ordered[1:]), linked))
    result.sort(key=lambda g: str(g.kept["_id"]))
    return result


@dataclass(slots=True)
class DedupeReport:
    run_id: str
    dry_run: bool
    keep: Keep
    groups: int = 0
    quarantined: int = 0
    changed_meanwhile: list[str] = field(default_factory=list)
    sample: list[dict[str, str]] = field(default_factory=list)
    #: Groups left alone because more than one of their investments has an MT5 account.
    skipped: list[dict[str, list[str]]] = field(default_factory=list)


async def dedupe(
    db: AsyncDatabase[dict[str, Any]],
    *,
    keep: Keep = "oldest",
    dry_run: bool = False,
    run_id: str | None = None,
    progress: ProgressSink = no_progress,
) -> DedupeReport:
    run_id = run_id or f"dedupe-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    report = DedupeReport(run_id=run_id, dry_run=dry_run, keep=keep)
    groups = await find_duplicates(db, keep=keep)
    report.groups = len(groups)
    report.skipped = [
        {"investments": [str(doc["_id"]) for doc in (group.kept, *group.duplicates)],
         "linked": [str(i) for i in group.linked]}
        for group in groups if group.ambiguous]
    groups = [group for group in groups if not group.ambiguous]
    pairs = [(group.kept, dup) for group in groups for dup in group.duplicates]
    for kept, dup in pairs[:10]:
        report.sample.append({"kept": str(kept["_id"]), "duplicate": str(dup["_id"])})
    if dry_run:
        report.quarantined = len(pairs)
        return report
    total = len(pairs)
    for start in range(0, total, BATCH_SIZE):
        await _quarantine_batch(db, pairs[start:start + BATCH_SIZE], report)
        progress(min(start + BATCH_SIZE, total), total)
    await record_script_run(
        db, script="dedupe", action="data_script.dedupe", run_id=run_id,
        summary={"keep": keep, "groups": report.groups, "quarantined": report.quarantined,
                 "changed_meanwhile": len(report.changed_meanwhile),
                 "skipped_groups": len(report.skipped), "rule": RULE},
    )
    return report


async def _quarantine_batch(
    db: AsyncDatabase[dict[str, Any]],
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
    report: DedupeReport,
) -> None:
    quarantine = DedupeQuarantineRepository(db)
    now = utcnow()
    await quarantine.quarantine([
        QuarantinedDocument(
            run_id=report.run_id, source_collection=QuarantineSource.INVESTMENTS,
            original_id=dup["_id"], kept_id=kept["_id"], document=dict(dup),
            reason=f"duplicate investment ({RULE}); kept the {report.keep}",
            quarantined_at=now, restored_at=None)
        for kept, dup in pairs
    ])
    await record_each(db, "investments", [dup for _, dup in pairs], script="dedupe",
                      verb="quarantine", run_id=report.run_id,
                      reason=f"duplicate investment ({RULE}); kept the {report.keep}")
    deletes = [DeleteOne(dict(dup)) for _, dup in pairs]
    result = await db["investments"].bulk_write(deletes, ordered=False)
    report.quarantined += result.deleted_count
    if result.deleted_count == len(pairs):
        return
    ids = [dup["_id"] for _, dup in pairs]
    cursor = db["investments"].find({"_id": {"$in": ids}}, {"_id": 1})
    still_there = [d["_id"] async for d in cursor]
    if still_there:
        await quarantine.withdraw(report.run_id, original_ids=still_there)
        report.changed_meanwhile.extend(str(i) for i in still_there)


@dataclass(slots=True)
class RollbackReport:
    run_id: str
    restored: int = 0
    already_present: int = 0
    conflicts: list[dict[str, str]] = field(default_factory=list)


async def rollback(db: AsyncDatabase[dict[str, Any]], run_id: str) -> RollbackReport:
    """Put every document quarantined by `run_id` back into investments, exactly as it was.

    A document already back (identical) counts as restored; one that cannot go back (its _id is
    taken by a different document, or the unique rule index refuses it) stays in quarantine and
    is reported.
    """
    quarantine = DedupeQuarantineRepository(db)
    report = RollbackReport(run_id=run_id)
    records = await quarantine.of_run(run_id)
    if not records:
        raise CommandRefused(f"no quarantined documents under run id {run_id!r}")
    pending = [r for r in records if r.restored_at is None]
    report.already_present = len(records) - len(pending)
    failed: dict[int, str] = {}
    if pending:
        try:
            await db["investments"].insert_many([r.document for r in pending], ordered=False)
        except BulkWriteError as error:
            for item in (error.details or {}).get("writeErrors", []):
                failed[item["index"]] = str(item.get("errmsg", "refused"))
    restored: list[QuarantinedDocument] = []
    for index, record in enumerate(pending):
        if index in failed:
            existing = await db["investments"].find_one({"_id": record.original_id})
            if existing != record.document:
                report.conflicts.append({"id": str(record.original_id),
                                         "reason": failed[index].splitlines()[0][:200]})
                continue
        restored.append(record)
    await quarantine.mark_restored(restored)
    report.restored = len(restored)
    await record_each(db, "investments", [r.document for r in restored], script="dedupe",
                      verb="restore", run_id=f"{run_id}.rollback",
                      reason=f"dedupe run {run_id} rolled back")
    await record_script_run(
        db, script="dedupe", action="data_script.dedupe_rollback", run_id=f"{run_id}.rollback",
        summary={"rolled_back_run": run_id, "restored": report.restored,
                 "conflicts": len(report.conflicts)},
    )
    return report


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    result = base_parser(
        "make dedupe",
        f"Quarantine duplicate investments ({RULE}).\n"
        "--rollback RUN_ID puts a run's documents back exactly.",
        writes=True,
    )
    result.add_argument("--keep", choices=("oldest", "newest"), default="oldest")
    result.add_argument("--rollback", metavar="RUN_ID", help="undo a previous run")
    return result


async def _command(ctx: Context) -> Outcome:
    args = ctx.args
    if args.rollback:
        if args.dry_run:
            count = await DedupeQuarantineRepository(ctx.db).awaiting_restore(args.rollback)
            return Outcome(title=f"rollback of {args.rollback} (dry run)",
                           columns=("run id", "would restore"), rows=[(args.rollback, count)],
                           data={"run_id": args.rollback, "would_restore": count,
                                 "dry_run": True})
        undo = await rollback(ctx.db, args.rollback)
        rows = [(undo.run_id, undo.restored, undo.already_present, len(undo.conflicts))]
        return Outcome(
            title=f"rollback of {undo.run_id}",
            columns=("run id", "restored", "restored before", "could not restore"),
            rows=rows,
            data={"run_id": undo.run_id, "restored": undo.restored,
                  "already_present": undo.already_present, "conflicts": undo.conflicts},
            findings=bool(undo.conflicts),
            messages=[f"  not restored {c['id']}: {c['reason']}" for c in undo.conflicts],
        )
    with ctx.track("quarantining duplicates") as progress:
        report = await dedupe(ctx.db, keep=args.keep, dry_run=args.dry_run, progress=progress)
    verb = "would quarantine" if report.dry_run else "quarantined"
    messages = [f"  kept {s['kept']}, {verb} {s['duplicate']}" for s in report.sample]
    messages += [f"  changed during the run, left in place: {i}" for i in report.changed_meanwhile]
    messages += [f"  left alone, MT5 accounts point to {' and '.join(g['linked'])} of the "
                 f"duplicates {', '.join(g['investments'])}: decide which to keep"
                 for g in report.skipped]
    if not report.dry_run and report.quarantined:
        messages.append(f"undo with: make dedupe ARGS=\"--rollback {report.run_id}\"")
    return Outcome(
        title=f"dedupe run {report.run_id}" + (" (dry run)" if report.dry_run else ""),
        columns=("run id", "duplicate groups", verb, "changed meanwhile", "groups left alone"),
        rows=[(report.run_id, report.groups, report.quarantined, len(report.changed_meanwhile),
               len(report.skipped))],
        data={"run_id": report.run_id, "dry_run": report.dry_run, "keep": report.keep,
              "groups": report.groups, "quarantined": report.quarantined,
              "changed_meanwhile": report.changed_meanwhile, "sample": report.sample,
              "skipped": report.skipped},
        findings=((report.dry_run and report.groups > 0) or bool(report.changed_meanwhile)
                  or bool(report.skipped)),
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings)
