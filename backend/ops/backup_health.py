"""The backups' part of `/health`: the last good backup's age and the last restore drill.

`/health` shows a `backups` section and is "degraded" when:
- the last good (complete, succeeded) backup is older than two backup periods;
- the last restore drill failed, or is older than two weeks;
- in production, no backup or no drill has been recorded yet (the worker takes both within a
  minute of starting).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI

from backend.db.connection import ConnectionManager, HealthSection
from backend.db.types import Database
from backend.models.backup_runs import BackupOutcome, BackupRun, BackupRunKind
from backend.ops.backup_schedule import DRILL_PERIOD, backup_period, describe_schedule
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.base import Clock, utcnow
from backend.settings import Settings

SECTION = "backups"
#: A backup or drill older than this many periods degrades the service.
STALE_AFTER_PERIODS = 2


def _file_name(run: BackupRun) -> str | None:
    return run.file.replace("\\", "/").rsplit("/", 1)[-1] if run.file else None


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def backup_health_section(settings: Settings, *, clock: Clock = utcnow) -> HealthSection:
    period = backup_period(settings)

    async def backups(db: Database) -> tuple[dict[str, Any], list[str]]:
        runs = BackupRunRepository(db, clock=clock)
        now = clock()
        good = await runs.last(BackupRunKind.BACKUP, outcome=BackupOutcome.SUCCEEDED)
        latest = await runs.last(BackupRunKind.BACKUP)
        drill = await runs.last(BackupRunKind.RESTORE_DRILL)
        reasons: list[str] = []
        section: dict[str, Any] = {
            "schedule": describe_schedule(settings) if settings.backup_schedule_enabled
            else "not scheduled (BACKUP_SCHEDULE_ENABLED=false)",
            "last_good_backup": None,
            "last_restore_drill": None,
        }
        if good is not None:
            age = now - good.finished_at
            section["last_good_backup"] = {
                "at": good.finished_at.isoformat(), "age_hours": _hours(age),
                "file": _file_name(good), "encrypted": good.encrypted,
                "consistency": good.consistency.value if good.consistency else None,
                "documents": good.documents, "trigger": good.trigger.value}
            if age > STALE_AFTER_PERIODS * period:
                reasons.append(f"the last good backup is {_hours(age)} hours old (more than "
                               f"{STALE_AFTER_PERIODS} backup periods of {_hours(period):g} h)")
        elif settings.is_production:
            reasons.append("no backup recorded yet")
        if latest is not None and latest.outcome is BackupOutcome.FAILED:
            section["last_backup_failed"] = {"at": latest.finished_at.isoformat(),
                                             "error": latest.error}
        if drill is not None:
            section["last_restore_drill"] = _drill(drill)
            when = f"{drill.finished_at:%Y-%m-%d %H:%M} UTC"
            if drill.outcome is BackupOutcome.FAILED:
                why = drill.error or (drill.checks[0] if drill.checks else "see backup_runs")
                reasons.append(f"the last restore drill ({when}) failed: {why}")
            elif now - drill.finished_at > STALE_AFTER_PERIODS * DRILL_PERIOD:
                reasons.append(f"the last restore drill was {(now - drill.finished_at).days} "
                               "days ago (weekly drills expected)")
        elif settings.is_production:
            reasons.append("no restore drill recorded yet")
        return section, reasons

    return backups


def _drill(run: BackupRun) -> dict[str, Any]:
    at: datetime = run.finished_at
    return {"at": at.isoformat(), "outcome": run.outcome.value, "file": _file_name(run),
            "findings": run.checks[:5], "error": run.error}


def register_backup_health(manager: ConnectionManager, settings: Settings) -> None:
    manager.health_sections[SECTION] = backup_health_section(settings)


async def backup_health_startup_step(app: FastAPI, manager: ConnectionManager) -> None:
    """A start-up step for `backend.api.app.default_startup_steps()`."""
    register_backup_health(manager, manager.settings)
