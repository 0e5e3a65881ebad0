"""Backup runs and restore drills: appended once each, read by `/health` and the scheduler."""

from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING

from backend.models.backup_runs import BackupOutcome, BackupRun, BackupRunKind, BackupTrigger
from backend.repositories.base import Repository


class BackupRunRepository(Repository[BackupRun]):
    collection_name = "backup_runs"
    model = BackupRun
    versioned = False
    timestamped = False

    async def record(self, run: BackupRun) -> BackupRun:
        return await self.create(run)

    async def last(self, kind: BackupRunKind, *,
                   outcome: BackupOutcome | None = None) -> BackupRun | None:
        """The latest run of `kind` (with that outcome, when given) by its end time.

        A backup counts only when it is complete (every collection, not a chosen subset).
        """
        query: dict[str, object] = {"kind": kind.value}
        if outcome is not None:
            query["outcome"] = outcome.value
        if kind is BackupRunKind.BACKUP:
            query["complete"] = True
        found = await self._find(query, sort=(("finished_at", DESCENDING),), limit=1)
        return found[0] if found else None

    async def of_slot(self, kind: BackupRunKind, slot: datetime) -> list[BackupRun]:
        """The scheduled runs that served `slot`, latest first."""
        return await self._find(
            {"kind": kind.value, "trigger": BackupTrigger.SCHEDULE.value, "slot": slot},
            sort=(("finished_at", DESCENDING),))
