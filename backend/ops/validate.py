"""validate-data: every document that breaks its collection's schema, counted per problem, and
`--fix` for legacy users.

Legacy users carry `type` instead of `user_type` and lack fields added since. The fix maps
`type` (admin, client, manager; anything else is reported and the document left alone), adds the
missing fields' defaults, derives `user_id` from the username, and applies nothing to a document
that would still break the schema afterwards. It backs the users collection up first, writes in
`bulk_write` batches, and is resumable: each update is filtered on the legacy shape
(`{_id, type: <the value read>}`), so a rerun after a crash only finds what is left and never
changes a document twice. Each fixed user gets a `user.import` audit record in the same
update (its creation was never recorded: it predates the audit trail), copied into
`audit_log` at the end of the run.
"""

from __future__ import annotations

import argparse
import inspect
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from backend.db.schema_registry import get_registry, get_schema
from backend.models._base import OUTBOX_FIELD
from backend.ops._audit import record_script_run, script_record
from backend.ops._cli import Context, Outcome, ProgressSink, base_parser, no_progress, run_command
from backend.ops._schema_check import document_problems
from backend.ops.backup import backup, default_path
from backend.ops.backup_cipher import BackupKeys
from backend.repositories.audit_log import AuditLogRepository
from backend.repositories.base import utcnow
from backend.repositories.users import UserRepository
from backend.services.audit import AuditTrail
from backend.settings import Settings

BATCH_SIZE = 1000
SAMPLE_IDS = 5
LEGACY_FILTER: dict[str, Any] = {"type": {"$exists": True}}
#: Legacy `type` values and the role each one is; anything else is reported, never guessed.
LEGACY_USER_TYPES = {"admin": "admin", "client": "client", "manager": "manager"}
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")

AfterBatch = Callable[[int], Awaitable[None] | None]
Clock = Callable[[], datetime]


@dataclass(slots=True)
class Problem:
    collection: str
    problem: str
    count: int = 0
    sample_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ValidationReport:
    checked: dict[str, int] = field(default_factory=dict)
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)
    invalid_documents: dict[str, int] = field(default_factory=dict)

    @property
    def total_invalid(self) -> int:
        return sum(self.invalid_documents.values())

    def add(self, collection: str, label: str, doc_id: Any) -> None:
        item = self.problems.setdefault((collection, label), Problem(collection, label))
        item.count += 1
        if len(item.sample_ids) < SAMPLE_IDS:
            item.sample_ids.append(str(doc_id))


async def validate(
    db: AsyncDatabase[dict[str, Any]],
    *,
    collections: Sequence[str] | None = None,
    progress: ProgressSink = no_progress,
) -> ValidationReport:
    """Check every document of every declared collection (or `collections`) that exists."""
    registry = get_registry()
    present = set(await db.list_collection_names())
    names = [n for n in (collections or list(registry)) if n in present]
    report = ValidationReport()
    done = 0
    for name in names:
        schema = registry[name].json_schema
        checked = invalid = 0
        async for doc in db[name].find({}):
            checked += 1
            done += 1
            labels = document_problems(doc, schema)
            if name == "users" and "type" in doc:
                labels.insert(0, "legacy user (type instead of user_type)")
            if labels:
                invalid += 1
                for label in dict.fromkeys(labels):
                    report.add(name, label, doc.get("_id"))
            if done % 500 == 0:
                progress(done)
        report.checked[name] = checked
        report.invalid_documents[name] = invalid
    progress(done, done)
    return report


# the legacy users fix ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserFix:
    doc_id: Any
    user_id: str
    operation: UpdateOne


@dataclass(frozen=True, slots=True)
class Refusal:
    doc_id: Any
    reasons: tuple[str, ...]


def derive_user_id(username: str) -> str | None:
    candidate = re.sub(r"[^a-z0-9_-]", "_", username.strip().lower())
    return candidate if _USER_ID.match(candidate) else None


def plan_user_fix(doc: Mapping[str, Any], now: datetime, *,
                  run_id: str = "fix-users") -> UserFix | Refusal:
    """The update that brings one legacy user to the current schema, or why there is none.

    The update carries the user's `user.import` audit record in its outbox: a legacy user
    enters the audit trail in the same write that migrates it."""
    doc_id = doc.get("_id")
    legacy = doc.get("type")
    mapped = LEGACY_USER_TYPES.get(legacy.strip().lower()) if isinstance(legacy, str) else None
    if mapped is None:
        return Refusal(doc_id, (f"type: unknown value {legacy!r}",))
    if "user_type" in doc and doc["user_type"] != mapped:
        return Refusal(doc_id, (f"type {legacy!r} disagrees with user_type {doc['user_type']!r}",))
    sets: dict[str, Any] = {"user_type": mapped}
    defaults: dict[str, Any] = {
        "is_active": True,
        "kyc_status": "pending",
        "aml_status": "pending",
        "failed_login_attempts": 0,
        "created_at": doc_id.generation_time if isinstance(doc_id, ObjectId) else now,
    }
    for name, value in defaults.items():
        if name not in doc:
            sets[name] = value
    if "user_id" not in doc:
        username = doc.get("username")
        user_id = derive_user_id(username) if isinstance(username, str) else None
        if user_id is None:
            return Refusal(doc_id, (f"user_id: cannot derive from username {username!r}",))
        sets["user_id"] = user_id
    filter_: dict[str, Any] = {"_id": doc_id, "type": legacy}
    version = doc.get("version")
    if version is None:
        sets["version"] = 1
    elif isinstance(version, int):
        # An optimistic-concurrency counter: a concurrent edit makes this update match nothing.
        sets["version"] = version + 1
        filter_["version"] = version
    sets["updated_at"] = now
    after = {k: v for k, v in doc.items() if k != "type"} | sets
    problems = document_problems(after, get_schema("users").json_schema)
    if problems:
        return Refusal(doc_id, tuple(f"would still break the schema: {p}" for p in problems))
    imported = script_record(script="validate-data", action="user.import", entity_type="user",
                             entity_id=str(doc_id), run_id=run_id, before=doc, after=after,
                             reason="legacy user migrated to the current schema", at=now)
    operation = UpdateOne(filter_, {"$set": sets, "$unset": {"type": ""},
                                    "$push": {OUTBOX_FIELD: imported}})
    return UserFix(doc_id, str(after["user_id"]), operation)


@dataclass(slots=True)
class FixReport:
    run_id: str
    dry_run: bool
    legacy_found: int = 0
    fixed: int = 0
    would_fix: int = 0
    skipped_changed: int = 0
    batches: int = 0
    refused: list[Refusal] = field(default_factory=list)
    backup_path: Path | None = None

    @property
    def refused_count(self) -> int:
        return len(self.refused)


async def fix_legacy_users(
    db: AsyncDatabase[dict[str, Any]],
    *,
    batch_size: int = BATCH_SIZE,
    backup_directory: Path | None = None,
    keys: BackupKeys | None = None,
    dry_run: bool = False,
    clock: Clock = utcnow,
    after_batch: AfterBatch | None = None,
    progress: ProgressSink = no_progress,
    run_id: str | None = None,
) -> FixReport:
    """Migrate legacy users in batches of `batch_size` (one `bulk_write` each).

    `after_batch(n)` runs after the n-th batch is written: the hook a caller (or a test
    simulating a crash) uses to observe or interrupt the run between batches.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = FixReport(run_id=run_id or f"fix-users-{uuid.uuid4().hex[:12]}", dry_run=dry_run)
    users = db["users"]
    report.legacy_found = await users.count_documents(LEGACY_FILTER)
    if report.legacy_found == 0:
        return report
    if not dry_run:
        report.backup_path = default_path(db.name, "users-before-fix", directory=backup_directory,
                                          encrypted=keys is not None)
        await backup(db, report.backup_path, collections=["users"], keys=keys)
    now = clock()
    # The user_ids in use, read once: users number in the thousands, and one read beats a
    # lookup a batch. One taken after this read is refused by the unique index and reported.
    claimed: dict[str, Any] = {
        doc["user_id"]: doc["_id"]
        async for doc in users.find({"user_id": {"$type": "string"}}, {"user_id": 1})
    }
    seen = 0

    async def write(batch: list[UserFix]) -> None:
        fixes = _without_user_id_collisions(batch, claimed, report)
        if not fixes:
            return
        if dry_run:
            report.would_fix += len(fixes)
            return
        refused_before = len(report.refused)
        try:
            result = await users.bulk_write([fix.operation for fix in fixes], ordered=False)
            modified = result.modified_count
        except BulkWriteError as error:
            details = error.details or {}
            modified = int(details.get("nModified", 0))
            for item in details.get("writeErrors", []):
                fix = fixes[item["index"]]
                report.refused.append(Refusal(fix.doc_id, (f"write refused: {item['errmsg']}",)))
        report.fixed += modified
        report.batches += 1
        # Matched nothing: changed by someone else since it was read, so left for a rerun.
        report.skipped_changed += len(fixes) - modified - (len(report.refused) - refused_before)
        if after_batch is not None:
            outcome = after_batch(report.batches)
            if inspect.isawaitable(outcome):
                await outcome

    # The legacy ids first (ids only, read straight through), then one bounded query a batch,
    # so no server cursor has to stay alive across the writes. Paging on "_id greater than the
    # last one seen" instead would skip, on a real MongoDB, every id of another BSON type
    # (`$gt` compares within one type), e.g. the ObjectIds after a page ending on a string id.
    legacy_ids = [doc["_id"] async for doc in users.find(LEGACY_FILTER, {"_id": 1},
                                                         sort=[("_id", 1)])]
    for start in range(0, len(legacy_ids), batch_size):
        chunk = legacy_ids[start:start + batch_size]
        query = {**LEGACY_FILTER, "_id": {"$in": chunk}}
        page = [doc async for doc in users.find(query, sort=[("_id", 1)])]
        if not page:
            continue
        fixes: list[UserFix] = []
        for doc in page:
            plan = plan_user_fix(doc, now, run_id=report.run_id)
            if isinstance(plan, Refusal):
                report.refused.append(plan)
            else:
                fixes.append(plan)
        seen += len(page)
        if fixes:
            await write(fixes)
        progress(seen, report.legacy_found)
    if not dry_run:
        await AuditTrail(AuditLogRepository(db)).relay(repositories=[UserRepository(db)])
        await record_script_run(
            db, script="validate-data", action="data_script.fix_legacy_users",
            run_id=report.run_id,
            summary={"legacy_found": report.legacy_found, "fixed": report.fixed,
                     "refused": report.refused_count, "batches": report.batches,
                     "backup": str(report.backup_path)},
        )
    return report


def _without_user_id_collisions(
    batch: list[UserFix], claimed: dict[str, Any], report: FixReport
) -> list[UserFix]:
    """Drop (and report) fixes whose user_id another user already has or this run gave out."""
    kept: list[UserFix] = []
    for fix in batch:
        owner = claimed.get(fix.user_id)
        if owner is not None and owner != fix.doc_id:
            report.refused.append(
                Refusal(fix.doc_id, (f"user_id: derived {fix.user_id!r} is already taken",))
            )
            continue
        claimed[fix.user_id] = fix.doc_id
        kept.append(fix)
    return kept


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    result = base_parser(
        "make validate-data",
        "Report every document that breaks its collection's schema, with counts per problem\n"
        "and sample ids. --fix migrates legacy users (after a backup, in batches, resumable).",
        writes=True,
    )
    result.add_argument("--fix", action="store_true", help="migrate legacy users first")
    result.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="documents a batch")
    result.add_argument("--backup-dir", type=Path, default=None,
                        help="where --fix writes its backup (default: var/backups)")
    result.add_argument("--collections", help="check only these (comma-separated)")
    return result


async def _command(ctx: Context) -> Outcome:
    args = ctx.args
    fix: FixReport | None = None
    messages: list[str] = []
    if args.fix:
        with ctx.track("fixing legacy users") as progress:
            fix = await fix_legacy_users(ctx.db, batch_size=args.batch_size,
                                         backup_directory=args.backup_dir,
                                         keys=BackupKeys.from_settings(ctx.settings),
                                         dry_run=args.dry_run, progress=progress)
        verb = "would fix" if fix.dry_run else "fixed"
        count = fix.would_fix if fix.dry_run else fix.fixed
        messages.append(f"legacy users: {fix.legacy_found} found, {verb} {count}, "
                        f"left alone {fix.refused_count}"
                        + (f"; backup {fix.backup_path}" if fix.backup_path else ""))
        for refusal in fix.refused[:20]:
            messages.append(f"  left alone {refusal.doc_id}: {'; '.join(refusal.reasons)}")
    collections = [c.strip() for c in args.collections.split(",")] if args.collections else None
    with ctx.track("validating") as progress:
        report = await validate(ctx.db, collections=collections, progress=progress)
    rows = [(p.collection, p.problem, p.count, ", ".join(p.sample_ids))
            for p in sorted(report.problems.values(), key=lambda p: (p.collection, -p.count))]
    counts = Counter({name: n for name, n in report.invalid_documents.items() if n})
    messages.append(f"checked {sum(report.checked.values())} documents in "
                    f"{len(report.checked)} collections; {report.total_invalid} break the schema")
    data: dict[str, Any] = {
        "checked": report.checked,
        "invalid_documents": dict(counts),
        "problems": [{"collection": p.collection, "problem": p.problem, "count": p.count,
                      "sample_ids": p.sample_ids} for p in report.problems.values()],
    }
    if fix is not None:
        data["fix"] = {"run_id": fix.run_id, "dry_run": fix.dry_run,
                       "legacy_found": fix.legacy_found, "fixed": fix.fixed,
                       "would_fix": fix.would_fix, "batches": fix.batches,
                       "backup": str(fix.backup_path) if fix.backup_path else None,
                       "refused": [{"id": r.doc_id, "reasons": list(r.reasons)}
                                   for r in fix.refused]}
    return Outcome(
        title="schema problems" if rows else "every document satisfies its schema",
        columns=("collection", "problem", "documents", "sample ids"),
        rows=rows,
        data=data,
        findings=report.total_invalid > 0,
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings)
