"""The restore drill: prove the newest backup restores, before the day it is needed.

`make restore-drill` (and the worker, weekly) takes the newest whole-database backup in
`BACKUP_DIRECTORY` (or the file named), restores it into a scratch database created with every
declared collection, validator and index, then:

1. compares every collection's count and checksum with the file's manifest (the restore put
   back exactly what was backed up);
2. relays the audit records still riding in restored documents, as the API would;
3. runs the integrity check (`backend.ops.verify`) on the scratch database;

drops the scratch database whatever happened, and records the outcome in `backup_runs`, where
`/health` shows it. Exit codes: 0 the drill passed, 1 it found problems, 2 it could not run
(no backup, an unreadable or tampered file, the database unavailable).
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from backend.db import index_sync
from backend.models.backup_runs import (
    BackupOutcome,
    BackupRun,
    BackupRunKind,
    BackupTrigger,
)
from backend.ops._cli import (
    CommandRefused,
    Context,
    Outcome,
    base_parser,
    error_line,
    run_command,
)
from backend.ops.backup import (
    BackupManifest,
    BackupSource,
    collection_digest,
    restore,
    this_host,
)
from backend.ops.backup_cipher import BackupKeys
from backend.ops.backup_files import newest_backup
from backend.ops.verify import verify
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.base import Clock, utcnow
from backend.services import Services
from backend.services.audit import Actor
from backend.settings import Settings

#: At most this many findings are stored with the run (the command prints them all).
STORED_FINDINGS = 50


class NoBackupToDrill(CommandRefused):
    code = "NO_BACKUP"


@dataclass(slots=True)
class DrillReport:
    file: Path | None
    started_at: datetime
    finished_at: datetime | None = None
    scratch_database: str | None = None
    manifest: BackupManifest | None = None
    #: Per collection: (count in the manifest, count restored, checksum agrees).
    compared: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    relayed: int = 0
    findings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.findings


def scratch_name(database: str) -> str:
    # MongoDB database names stop at 63 characters.
    return f"{database[:40]}_drill_{uuid.uuid4().hex[:10]}"


async def restore_drill(
    db: AsyncDatabase[dict[str, Any]],
    settings: Settings,
    *,
    path: Path | None = None,
    trigger: BackupTrigger = BackupTrigger.MANUAL,
    slot: datetime | None = None,
    clock: Clock = utcnow,
) -> tuple[DrillReport, BackupRun]:
    """Run the drill on `path` (default: the newest backup) and record it; never raises for a
    failed drill (its run says why), only when recording the run fails."""
    report = DrillReport(file=path, started_at=clock())
    try:
        await _drill(db, settings, report)
    except Exception as error:  # noqa: BLE001 - the run records why the drill could not run
        report.error = _one_line(error)
    report.finished_at = clock()
    run = BackupRun(
        kind=BackupRunKind.RESTORE_DRILL, trigger=trigger,
        outcome=BackupOutcome.SUCCEEDED if report.passed else BackupOutcome.FAILED,
        slot=slot, started_at=report.started_at, finished_at=report.finished_at,
        file=str(report.file)[:500] if report.file else None,
        size_bytes=report.manifest.size_bytes if report.manifest else None,
        encrypted=report.manifest.encrypted if report.manifest else None,
        consistency=report.manifest.consistency if report.manifest else None,
        complete=bool(report.manifest and report.manifest.complete),
        documents=report.manifest.total if report.manifest else None,
        checks=[line[:500] for line in report.findings[:STORED_FINDINGS]],
        error=report.error[:500] if report.error else None, host=this_host())
    return report, await BackupRunRepository(db).record(run)


async def _drill(db: AsyncDatabase[dict[str, Any]], settings: Settings,
                 report: DrillReport) -> None:
    if report.file is None:
        report.file = newest_backup(settings.backup_directory, db.name)
        if report.file is None:
            raise NoBackupToDrill(f"no backup of {db.name} in {settings.backup_directory} "
                                  "to drill")
    source = BackupSource(report.file, BackupKeys.from_settings(settings))
    report.scratch_database = scratch_name(db.name)
    scratch = db.client.get_database(report.scratch_database, codec_options=db.codec_options)
    try:
        await index_sync.apply(scratch, await index_sync.plan(scratch))
        restored = await restore(scratch, source)
        report.manifest = manifest = restored.manifest
        if not manifest.complete:
            report.findings.append(f"{report.file.name} is not a whole-database backup")
        for entry in manifest.collections:
            actual = await collection_digest(scratch, entry.name)
            same = actual.count == entry.count and actual.sha256 == entry.sha256
            report.compared[entry.name] = (entry.count, actual.count, same)
            if not same:
                checksum = "agrees" if actual.sha256 == entry.sha256 else "differs"
                report.findings.append(
                    f"{entry.name}: restored {actual.count} documents, the manifest says "
                    f"{entry.count}; checksum {checksum}")
        services = Services(scratch, settings)
        report.relayed = await services.audit.relay()
        # As a real restore does: contracts a collection-by-collection read caught half-written.
        await services.contracts.complete_interrupted(actor=Actor.script("restore-drill"))
        report.relayed += await services.audit.relay()
        for check in await verify(scratch):
            if not check.ok:
                sample = f" (e.g. {', '.join(check.sample_ids)})" if check.sample_ids else ""
                report.findings.append(f"verify: {check.name}: {check.failed} of "
                                       f"{check.checked} failed{sample}")
    finally:
        with contextlib.suppress(PyMongoError):
            await db.client.drop_database(report.scratch_database)


def _one_line(error: BaseException) -> str:
    code = getattr(error, "code", None)
    prefix = f"{code}: " if isinstance(code, str) else f"{type(error).__name__}: "
    return prefix + error_line(error, limit=400)


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = base_parser("make restore-drill", "Restore the newest backup (or FILE) into a scratch "
                    "database, compare counts and checksums with its manifest, run verify "
                    "there, drop the scratch database and record the outcome.", writes=False)
    p.add_argument("file", type=Path, nargs="?", default=None,
                   help="backup file (default: the newest in BACKUP_DIRECTORY)")
    return p


async def _command(ctx: Context) -> Outcome:
    with ctx.track("restore drill") as progress:
        progress(0)
        report, run = await restore_drill(ctx.db, ctx.settings, path=ctx.args.file)
    if report.error is not None and report.manifest is None:
        # Nothing was restored: the drill could not run at all.
        raise CommandRefused(f"restore drill failed: {report.error}", code="DRILL_FAILED")
    rows = [(name, expected, restored, "ok" if same else "DIFFERS")
            for name, (expected, restored, same) in report.compared.items()]
    verdict = "passed" if report.passed else "FAILED"
    messages = [f"restore drill {verdict}: {report.file} into {report.scratch_database} "
                "(dropped afterwards)"]
    messages += report.findings
    if report.error:
        messages.append(f"error: {report.error}")
    return Outcome(
        title=f"restore drill {verdict}",
        columns=("collection", "manifest", "restored", "checksum"),
        rows=rows,
        data={"file": str(report.file), "outcome": run.outcome.value,
              "scratch_database": report.scratch_database, "relayed_audit_records":
              report.relayed, "findings": report.findings, "error": report.error,
              "collections": {name: {"manifest": expected, "restored": restored,
                                     "checksum_ok": same}
                              for name, (expected, restored, same) in report.compared.items()}},
        findings=not report.passed,
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings)
