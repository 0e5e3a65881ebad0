"""Scheduled backups and restore drills, run by the worker under a lease.

Backups fall due every `BACKUP_INTERVAL_HOURS` (which divides a day) counted from
`BACKUP_AT_UTC` (default: daily at 02:00 UTC); the restore drill weekly on
`RESTORE_DRILL_WEEKDAY` at `RESTORE_DRILL_AT_UTC` (default: sunday 03:00 UTC). The worker asks
every minute; a slot is done once a run for it succeeded, and a failed one is tried again
`BACKUP_RETRY_MINUTES` later while the slot lasts. Missed slots (the worker was down) are not
caught up one by one: the next check runs the latest slot once.

Each job takes its lease in `locks` (`backup:scheduled`, `backup:restore-drill`) for
`BACKUP_LEASE_SECONDS`, renewed every third of that while it runs, and checks again under the
lease that no one finished the slot meanwhile: two workers never both run it. After a backup,
retention deletes the scheduled files the rule does not keep (`backend/ops/backup_files.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from backend.errors import FidusError
from backend.models.backup_runs import BackupOutcome, BackupRun, BackupRunKind, BackupTrigger
from backend.ops._cli import error_line
from backend.ops.backup import backup, default_path, record_backup
from backend.ops.backup_cipher import BackupKeys
from backend.ops.backup_files import SCHEDULED_LABEL, apply_retention, newest_backup
from backend.ops.restore_drill import restore_drill
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.base import Clock, utcnow
from backend.repositories.locks import LockRepository, new_owner
from backend.settings import Settings

logger = logging.getLogger(__name__)

BACKUP_LEASE = "backup:scheduled"
DRILL_LEASE = "backup:restore-drill"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DRILL_PERIOD = timedelta(days=7)
Sleep = Callable[[float], Awaitable[None]]


def _at(day: datetime, moment: time) -> datetime:
    return day.replace(hour=moment.hour, minute=moment.minute, second=0, microsecond=0)


def backup_period(settings: Settings) -> timedelta:
    return timedelta(hours=settings.backup_interval_hours)


def backup_slot(now: datetime, settings: Settings) -> datetime:
    """The latest scheduled backup time at or before `now`."""
    period = backup_period(settings)
    anchor = _at(now, settings.backup_at_utc)
    return anchor + ((now - anchor) // period) * period


def drill_slot(now: datetime, settings: Settings) -> datetime:
    """The latest scheduled drill time at or before `now`."""
    weekday = WEEKDAYS.index(settings.restore_drill_weekday)
    anchor = _at(now, settings.restore_drill_at_utc) + timedelta(days=weekday - now.weekday())
    return anchor + ((now - anchor) // DRILL_PERIOD) * DRILL_PERIOD


def describe_schedule(settings: Settings) -> str:
    at = settings.backup_at_utc.strftime("%H:%M")
    every = ("daily" if settings.backup_interval_hours == 24
             else f"every {settings.backup_interval_hours} h from")
    drill = settings.restore_drill_at_utc.strftime("%H:%M")
    return (f"backups {every} {at} UTC into {settings.backup_directory} (keeping "
            f"{settings.backup_keep_daily} daily, {settings.backup_keep_monthly} monthly); "
            f"restore drill {settings.restore_drill_weekday}s {drill} UTC")


@dataclass(slots=True)
class TickReport:
    """What one check of the schedule did."""

    backup: BackupRun | None = None
    drill: BackupRun | None = None
    deleted: list[str] = field(default_factory=list)


class BackupScheduler:
    """One worker's view of the backup schedule; `tick()` runs whatever is due."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], settings: Settings, *,
                 clock: Clock = utcnow, owner: str | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.owner = owner or new_owner()
        self.sleep = sleep
        self.runs = BackupRunRepository(db, clock=clock)
        self.locks = LockRepository(db, clock=clock)

    async def tick(self) -> TickReport:
        report = TickReport()
        if not self.settings.backup_schedule_enabled:
            return report
        report.backup = await self.backup_if_due(report)
        report.drill = await self.drill_if_due()
        return report

    async def _slot_done(self, kind: BackupRunKind, slot: datetime) -> bool:
        runs = await self.runs.of_slot(kind, slot)
        if any(run.outcome is BackupOutcome.SUCCEEDED for run in runs):
            return True
        retry = timedelta(minutes=self.settings.backup_retry_minutes)
        return bool(runs) and self.clock() - runs[0].finished_at < retry

    @contextlib.asynccontextmanager
    async def _lease(self, name: str) -> AsyncIterator[bool]:
        seconds = self.settings.backup_lease_seconds
        if not await self.locks.acquire(name, owner=self.owner, seconds=seconds):
            yield False
            return
        heartbeat = asyncio.ensure_future(self._renew(name, seconds))
        try:
            yield True
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            with contextlib.suppress(FidusError, PyMongoError):
                await self.locks.release(name, owner=self.owner)

    async def _renew(self, name: str, seconds: float) -> None:
        while True:
            await self.sleep(seconds / 3)
            try:
                if not await self.locks.renew(name, owner=self.owner, seconds=seconds):
                    logger.warning("lost the %s lease while running; another worker may "
                                   "run the same slot", name)
                    return
            except (FidusError, PyMongoError):
                continue  # two more beats fall inside the lease

    async def backup_if_due(self, report: TickReport | None = None) -> BackupRun | None:
        slot = backup_slot(self.clock(), self.settings)
        if await self._slot_done(BackupRunKind.BACKUP, slot):
            return None
        async with self._lease(BACKUP_LEASE) as held:
            if not held or await self._slot_done(BackupRunKind.BACKUP, slot):
                return None
            return await self._backup(slot, report or TickReport())

    async def _backup(self, slot: datetime, report: TickReport) -> BackupRun:
        settings = self.settings
        keys = BackupKeys.from_settings(settings)
        started = self.clock()
        path = default_path(self.db.name, SCHEDULED_LABEL, directory=settings.backup_directory,
                            encrypted=keys is not None, at=started)
        try:
            manifest = await backup(self.db, path, keys=keys, clock=self.clock)
        except Exception as error:  # noqa: BLE001 - recorded; the next check tries again
            logger.exception("scheduled backup for %s failed", slot.isoformat())
            return await record_backup(self.db, trigger=BackupTrigger.SCHEDULE,
                                       started_at=started, finished_at=self.clock(),
                                       error=f"{type(error).__name__}: {error_line(error)}",
                                       slot=slot)
        run = await record_backup(self.db, trigger=BackupTrigger.SCHEDULE, started_at=started,
                                  finished_at=self.clock(), manifest=manifest, slot=slot)
        deleted = apply_retention(settings.backup_directory, self.db.name,
                                  keep_daily=settings.backup_keep_daily,
                                  keep_monthly=settings.backup_keep_monthly, now=self.clock())
        report.deleted = [path.name for path in deleted]
        logger.info("scheduled backup written to %s (%d documents); retention deleted %d "
                    "file(s)", path, manifest.total, len(deleted))
        return run

    async def drill_if_due(self) -> BackupRun | None:
        slot = drill_slot(self.clock(), self.settings)
        if await self._slot_done(BackupRunKind.RESTORE_DRILL, slot):
            return None
        if newest_backup(self.settings.backup_directory, self.db.name) is None:
            return None  # nothing to drill yet; /health already says there is no backup
        async with self._lease(DRILL_LEASE) as held:
            if not held or await self._slot_done(BackupRunKind.RESTORE_DRILL, slot):
                return None
            drill, run = await restore_drill(self.db, self.settings,
                                             trigger=BackupTrigger.SCHEDULE, slot=slot,
                                             clock=self.clock)
            log = logger.info if drill.passed else logger.error
            log("restore drill of %s %s%s", drill.file, run.outcome.value,
                f": {drill.error or '; '.join(drill.findings[:3])}" if not drill.passed else "")
            return run
