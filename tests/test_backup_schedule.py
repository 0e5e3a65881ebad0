"""Scheduled backups: when they fall due, the lease that keeps two workers from both running one,
retries of a failed one, and retention on a simulated calendar."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pymongo.asynchronous.database import AsyncDatabase

from backend.models.backup_runs import BackupOutcome, BackupRunKind, BackupTrigger
from backend.ops import backup as ops
from backend.ops.backup_cipher import BackupKeys
from backend.ops.backup_files import (
    SCHEDULED_LABEL,
    apply_retention,
    backup_files,
    newest_backup,
    parse_name,
)
from backend.ops.backup_schedule import (
    BACKUP_LEASE,
    BackupScheduler,
    backup_slot,
    drill_slot,
)
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.locks import LockRepository
from backend.settings import Settings
from backend.sync.scheduler import StopSignal, run_every
from tests.support import ManualClock, make_settings

DB = "fidus_calendar"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_backup_slots_follow_the_time_of_day_and_the_interval() -> None:
    daily = Settings(_env_file=None)  # type: ignore[call-arg]
    assert daily.backup_at_utc == time(2, 0) and daily.backup_interval_hours == 24
    assert backup_slot(at("2026-03-10T01:59:59"), daily) == at("2026-03-09T02:00")
    assert backup_slot(at("2026-03-10T02:00"), daily) == at("2026-03-10T02:00")
    assert backup_slot(at("2026-03-10T23:59"), daily) == at("2026-03-10T02:00")
    six_hourly = Settings(_env_file=None, backup_interval_hours=6)  # type: ignore[call-arg]
    assert backup_slot(at("2026-03-10T01:00"), six_hourly) == at("2026-03-09T20:00")
    assert backup_slot(at("2026-03-10T08:00"), six_hourly) == at("2026-03-10T08:00")
    assert backup_slot(at("2026-03-10T13:59"), six_hourly) == at("2026-03-10T08:00")


def test_drill_slots_are_weekly() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.restore_drill_weekday == "sunday"
    # 2026-03-08 is a Sunday.
    assert drill_slot(at("2026-03-08T02:59"), settings) == at("2026-03-01T03:00")
    assert drill_slot(at("2026-03-08T03:00"), settings) == at("2026-03-08T03:00")
    assert drill_slot(at("2026-03-14T23:00"), settings) == at("2026-03-08T03:00")
    wednesday = Settings(_env_file=None, restore_drill_weekday="wednesday")  # type: ignore[call-arg]
    assert drill_slot(at("2026-03-10T12:00"), wednesday) == at("2026-03-04T03:00")


def _touch(directory: Path, label: str, moment: datetime) -> Path:
    path = ops.default_path(DB, label, directory=directory, encrypted=True, at=moment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_retention_over_400_days_keeps_exactly_30_daily_and_12_monthly(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.backup_keep_daily, settings.backup_keep_monthly) == (30, 12)
    operator_copy = _touch(tmp_path, "backup", at("2025-01-01T09:00"))
    safety_copy = _touch(tmp_path, "before-restore", at("2025-01-02T09:00"))
    clock = at("2025-01-01T02:00:00.250")
    for _day in range(400):
        _touch(tmp_path, SCHEDULED_LABEL, clock)
        apply_retention(tmp_path, DB, keep_daily=30, keep_monthly=12, now=clock)
        kept = backup_files(tmp_path, DB, labels=(SCHEDULED_LABEL,))
        assert len(kept) <= 42 and kept[-1].taken_at == clock
        clock += timedelta(days=1)

    assert clock.date() == date(2026, 2, 5)  # the last backup was on 2026-02-04
    kept_days = {item.taken_at.date() for item in backup_files(
        tmp_path, DB, labels=(SCHEDULED_LABEL,))}
    daily = {date(2026, 2, 4) - timedelta(days=n) for n in range(30)}
    monthly = {date(2026, 2, 1), date(2026, 1, 1)} | {date(2025, m, 1) for m in range(3, 13)}
    assert min(daily) == date(2026, 1, 6)
    assert kept_days == daily | monthly
    assert len(kept_days) == 41
    assert operator_copy.exists() and safety_copy.exists()


def test_retention_keeps_the_newest_of_a_day_and_the_first_of_a_month(tmp_path: Path) -> None:
    for day in range(1, 11):
        for hour in (2, 14):
            _touch(tmp_path, SCHEDULED_LABEL, at(f"2026-04-{day:02d}T{hour:02d}:00"))
    abandoned = _touch(tmp_path, SCHEDULED_LABEL, at("2026-04-08T02:00:01"))
    abandoned = abandoned.rename(abandoned.with_name(abandoned.name + ".partial"))
    fresh_partial = _touch(tmp_path, SCHEDULED_LABEL, at("2026-04-10T14:00:01"))
    fresh_partial = fresh_partial.rename(fresh_partial.with_name(fresh_partial.name + ".partial"))

    deleted = apply_retention(tmp_path, DB, keep_daily=3, keep_monthly=1,
                              now=at("2026-04-10T14:30"))

    kept = [(item.taken_at.day, item.taken_at.hour)
            for item in backup_files(tmp_path, DB, labels=(SCHEDULED_LABEL,))]
    assert kept == [(1, 2), (8, 14), (9, 14), (10, 14)]
    assert len(deleted) == 20 - 4 + 1
    assert not abandoned.exists() and fresh_partial.exists()


def test_file_names_parse_back_for_databases_with_dashes(tmp_path: Path) -> None:
    moment = at("2026-04-01T02:00:00.123456")
    path = ops.default_path("fund-a-prod", "before-seed-reset", directory=tmp_path, at=moment)
    parsed = parse_name(path, "fund-a-prod")
    assert parsed is not None and (parsed.label, parsed.taken_at) == ("before-seed-reset", moment)
    # Another database's files in the same directory are never taken for this one's.
    _touch(tmp_path, SCHEDULED_LABEL, moment).rename(
        tmp_path / "fund-a-prod-scheduled-20260401T020000123456Z.jsonl.gz.enc")
    assert backup_files(tmp_path, "fund-a", labels=(SCHEDULED_LABEL, "backup")) == []
    assert apply_retention(tmp_path, "fund-a", keep_daily=1, keep_monthly=0, now=moment) == []
    assert len(backup_files(tmp_path, "fund-a-prod", labels=(SCHEDULED_LABEL,))) == 1


# The scheduler tests below run in 2030: a lease that expired more than a day before the
# server's own time is removed by the `locks` TTL index, and the clock here is not the server's.
def _settings(mongo_uri: str, database: str, directory: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "backup_encryption_key": Fernet.generate_key().decode(),
        "backup_directory": directory, "backup_keep_daily": 2, "backup_keep_monthly": 1}
    values.update(overrides)
    return make_settings(mongo_uri, database, **values)


async def _slot_runs(db: AsyncDatabase[dict[str, Any]], slot: datetime) -> list[Any]:
    return await BackupRunRepository(db).of_slot(BackupRunKind.BACKUP, slot)


async def test_the_worker_backs_up_each_slot_once_drills_weekly_and_prunes(
        synced_db: AsyncDatabase[dict[str, Any]], mongo_uri: str, tmp_path: Path) -> None:
    settings = _settings(mongo_uri, synced_db.name, tmp_path / "backups")
    clock = ManualClock(at("2030-03-01T01:00"))
    worker = BackupScheduler(synced_db, settings, clock=clock.now, sleep=clock.sleep)

    # Started after a missed slot: the latest one is backed up at once, and drilled.
    first = await worker.tick()
    assert first.backup is not None and first.backup.slot == at("2030-02-28T02:00")
    assert first.backup.outcome is BackupOutcome.SUCCEEDED
    assert first.backup.trigger is BackupTrigger.SCHEDULE and first.backup.encrypted
    assert first.drill is not None and first.drill.outcome is BackupOutcome.SUCCEEDED, \
        first.drill.checks or first.drill.error
    assert first.drill.file == str(newest_backup(settings.backup_directory, synced_db.name))
    again = await worker.tick()
    assert again.backup is None and again.drill is None

    # Two workers at the same slot: one backup.
    other = BackupScheduler(synced_db, settings, clock=clock.now, sleep=clock.sleep)
    await clock.advance(3600)
    reports = await asyncio.gather(worker.tick(), other.tick())
    assert sum(report.backup is not None for report in reports) == 1
    assert len(await _slot_runs(synced_db, at("2030-03-01T02:00"))) == 1

    for _day in range(3):
        await clock.advance(24 * 3600)
        assert (await worker.tick()).backup is not None
    files = backup_files(settings.backup_directory, synced_db.name)
    # 2 daily (03-03, 03-04) and the first of the month (03-01); 02-28 and 03-02 are gone.
    assert [f.taken_at.date() for f in files] == [date(2030, 3, 1), date(2030, 3, 3),
                                                  date(2030, 3, 4)]
    manifest = ops.verify_file(ops.BackupSource(files[-1].path, BackupKeys.from_settings(settings)))
    assert manifest.complete and manifest.entry("backup_runs").count >= 5


async def test_a_slot_held_by_another_worker_waits_for_its_lease(
        synced_db: AsyncDatabase[dict[str, Any]], mongo_uri: str, tmp_path: Path) -> None:
    settings = _settings(mongo_uri, synced_db.name, tmp_path / "backups",
                         backup_lease_seconds=600)
    clock = ManualClock(at("2030-03-02T02:00"))
    held = await LockRepository(synced_db, clock=clock.now).acquire(
        BACKUP_LEASE, owner="host-b:1:crashed", seconds=600)
    assert held
    worker = BackupScheduler(synced_db, settings, clock=clock.now, sleep=clock.sleep)

    assert await worker.backup_if_due() is None
    assert await _slot_runs(synced_db, at("2030-03-02T02:00")) == []
    await clock.advance(601)  # the other worker died: its lease expires
    run = await worker.backup_if_due()
    assert run is not None and run.outcome is BackupOutcome.SUCCEEDED


async def test_a_failed_backup_is_recorded_and_tried_again_after_the_retry_delay(
        synced_db: AsyncDatabase[dict[str, Any]], mongo_uri: str, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "backups"
    not_a_directory.write_text("a file where the directory should be")
    settings = _settings(mongo_uri, synced_db.name, not_a_directory, backup_retry_minutes=30)
    clock = ManualClock(at("2030-03-02T02:00"))
    worker = BackupScheduler(synced_db, settings, clock=clock.now, sleep=clock.sleep)

    failed = await worker.backup_if_due()
    assert failed is not None and failed.outcome is BackupOutcome.FAILED
    assert failed.error is not None and "FileExistsError" in failed.error
    await clock.advance(29 * 60)
    assert await worker.backup_if_due() is None
    not_a_directory.unlink()
    await clock.advance(60)
    retried = await worker.backup_if_due()
    assert retried is not None and retried.outcome is BackupOutcome.SUCCEEDED
    assert [r.outcome for r in await _slot_runs(synced_db, at("2030-03-02T02:00"))] == [
        BackupOutcome.SUCCEEDED, BackupOutcome.FAILED]


async def test_nothing_runs_when_the_schedule_is_off(
        synced_db: AsyncDatabase[dict[str, Any]], mongo_uri: str, tmp_path: Path) -> None:
    settings = _settings(mongo_uri, synced_db.name, tmp_path / "b",
                         backup_schedule_enabled=False)
    report = await BackupScheduler(synced_db, settings).tick()
    assert report.backup is None and report.drill is None
    assert not (tmp_path / "b").exists()


async def test_the_schedule_check_repeats_survives_a_failure_and_stops_on_sigterm() -> None:
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database briefly down")
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with StopSignal() as stop:
        ticks = await asyncio.wait_for(
            run_every(tick, every_seconds=0.01, stop=stop, what="backup schedule"), timeout=5)
    assert ticks == 2 and len(calls) == 3
