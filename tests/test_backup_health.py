"""`/health` shows the last good backup's age and the last restore drill, and is degraded when
the backup is older than two periods or the drill failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.backup_runs import (
    BackupConsistency,
    BackupOutcome,
    BackupRun,
    BackupRunKind,
    BackupTrigger,
)
from backend.ops.backup_health import backup_health_section
from backend.repositories.backup_runs import BackupRunRepository
from backend.settings import Environment, Settings

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def run(kind: BackupRunKind, outcome: BackupOutcome, finished_at: datetime, **fields: Any
        ) -> BackupRun:
    values: dict[str, Any] = {
        "kind": kind, "trigger": BackupTrigger.SCHEDULE, "outcome": outcome,
        "started_at": finished_at - timedelta(minutes=3), "finished_at": finished_at,
        "file": f"/srv/backups/fidus-scheduled-{finished_at:%Y%m%d}.jsonl.gz.enc",
        "encrypted": True, "consistency": BackupConsistency.SNAPSHOT, "complete": True,
        "documents": 1200}
    values.update(fields)
    return BackupRun(**values)


async def _record(db: AsyncDatabase[dict[str, Any]], *runs: BackupRun) -> None:
    for item in runs:
        await BackupRunRepository(db).record(item)


async def test_a_recent_backup_and_drill_are_shown_and_healthy(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    await _record(db,
                  run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, NOW - timedelta(hours=34)),
                  run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, NOW - timedelta(hours=10)),
                  run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, NOW - timedelta(hours=1),
                      complete=False),
                  run(BackupRunKind.RESTORE_DRILL, BackupOutcome.SUCCEEDED,
                      NOW - timedelta(days=3)))
    section, reasons = await backup_health_section(settings, clock=lambda: NOW)(db)
    assert reasons == []
    good = section["last_good_backup"]
    # A backup of chosen collections is not a backup of the fund's data.
    assert good["age_hours"] == 10.0 and good["at"] == "2026-06-10T02:00:00+00:00"
    assert good["file"] == "fidus-scheduled-20260610.jsonl.gz.enc" and good["encrypted"]
    assert section["last_restore_drill"]["outcome"] == "succeeded"
    assert section["last_restore_drill"]["at"] == "2026-06-07T12:00:00+00:00"


async def test_an_old_backup_and_a_failed_drill_degrade(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    await _record(db,
                  run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, NOW - timedelta(hours=49)),
                  run(BackupRunKind.BACKUP, BackupOutcome.FAILED, NOW - timedelta(hours=1),
                      error="OSError: No space left on device"),
                  run(BackupRunKind.RESTORE_DRILL, BackupOutcome.FAILED,
                      NOW - timedelta(hours=2),
                      checks=["verify: investments.client_id -> users: 1 of 9 failed"]))
    section, reasons = await backup_health_section(settings, clock=lambda: NOW)(db)
    assert reasons == [
        "the last good backup is 49.0 hours old (more than 2 backup periods of 24 h)",
        "the last restore drill (2026-06-10 10:00 UTC) failed: verify: "
        "investments.client_id -> users: 1 of 9 failed",
    ]
    assert section["last_backup_failed"]["error"] == "OSError: No space left on device"
    assert section["last_restore_drill"]["outcome"] == "failed"


async def test_a_shorter_period_and_an_old_drill(db: AsyncDatabase[dict[str, Any]],
                                                 settings: Settings) -> None:
    six_hourly = settings.model_copy(update={"backup_interval_hours": 6})
    await _record(db,
                  run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, NOW - timedelta(hours=13)),
                  run(BackupRunKind.RESTORE_DRILL, BackupOutcome.SUCCEEDED,
                      NOW - timedelta(days=15)))
    _, reasons = await backup_health_section(six_hourly, clock=lambda: NOW)(db)
    assert reasons == [
        "the last good backup is 13.0 hours old (more than 2 backup periods of 6 h)",
        "the last restore drill was 15 days ago (weekly drills expected)",
    ]


async def test_production_without_any_backup_is_degraded(
        db: AsyncDatabase[dict[str, Any]], settings: Settings) -> None:
    production = settings.model_copy(update={"fidus_env": Environment.PRODUCTION})
    _, reasons = await backup_health_section(production, clock=lambda: NOW)(db)
    assert reasons == ["no backup recorded yet", "no restore drill recorded yet"]
    _, quiet = await backup_health_section(settings, clock=lambda: NOW)(db)
    assert quiet == []


async def test_health_endpoint_shows_the_backups(client: httpx.AsyncClient,
                                                 db: AsyncDatabase[dict[str, Any]]) -> None:
    fresh = await client.get("/health")
    assert fresh.status_code == 200 and fresh.json()["status"] == "healthy"
    assert fresh.json()["backups"]["last_good_backup"] is None

    now = datetime.now(UTC)
    await _record(db, run(BackupRunKind.BACKUP, BackupOutcome.SUCCEEDED, now - timedelta(days=3)),
                  run(BackupRunKind.RESTORE_DRILL, BackupOutcome.SUCCEEDED,
                      now - timedelta(days=3)))
    body = (await client.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["reasons"][0].startswith("the last good backup is 72.0 hours old")
    assert body["backups"]["last_restore_drill"]["outcome"] == "succeeded"
