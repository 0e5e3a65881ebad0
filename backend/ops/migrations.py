"""Versioned migrations: ordered files with forward and backward steps, run under a lock.

A migration is a file `m<YYYYMMDDHHMMSS>_<name>.py` in `backend/migrations/` defining
`async def up(db)` and `async def down(db)`. Applied versions are recorded in `migrations`
(version, name, SHA-256 of the file, applied_at, duration_ms). Before anything runs, every
applied migration's file is checked against its recorded checksum: an applied file that changed
is refused, because the database no longer says what that file does.

Runs take the `migrations` lease in `locks` (`backend.repositories.locks`, the lease the MT5
sync uses too, so the server decides who wins); a second run waits up to `lock_wait` seconds and
is then refused clearly. A dry run only reads (the files and `migrations`): it takes no lock and
writes nothing. While a run holds the lease, a heartbeat renews it every `LEASE_SECONDS / 3`,
however long a step takes; a lease whose holder died stops being renewed, expires after
`LEASE_SECONDS` and may be taken over. Before a step is recorded (or un-recorded), the run
confirms it still owns the lease; a run that lost it stops with MIGRATION_LOCK_LOST and records
nothing. Time comes from an injected clock and waits from an injected sleep, so the tests move
time instead of waiting for it.

Migrations must be idempotent: a crash (or a lost lease) between a step and its record leaves
the step done but unrecorded, and the next run executes it again.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from backend.errors import FidusError
from backend.models.migrations import MigrationRecord
from backend.ops._audit import record_script_run
from backend.ops._cli import CommandRefused, Context, Outcome, base_parser, run_command
from backend.repositories.base import Clock, utcnow
from backend.repositories.locks import LockRepository, new_owner
from backend.repositories.migrations import MigrationRepository
from backend.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
LOCK_NAME = "migrations"
LEASE_SECONDS = 600
_FILE = re.compile(r"^m(?P<version>[0-9]{14})_(?P<name>[a-z0-9_]{1,100})\.py$")

Step = Callable[[AsyncDatabase[dict[str, Any]]], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


class MigrationLocked(CommandRefused):
    code = "MIGRATION_LOCKED"


class MigrationChanged(CommandRefused):
    code = "MIGRATION_CHANGED"


class MigrationFailed(CommandRefused):
    code = "MIGRATION_FAILED"


class MigrationLockLost(MigrationFailed):
    code = "MIGRATION_LOCK_LOST"


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: str
    name: str
    path: Path
    checksum: str

    def load(self) -> tuple[Step, Step]:
        spec = importlib.util.spec_from_file_location(
            f"fidus_migration_{self.version}_{self.name}", self.path)
        if spec is None or spec.loader is None:
            raise MigrationFailed(f"cannot load {self.path.name}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        up, down = getattr(module, "up", None), getattr(module, "down", None)
        if not callable(up) or not callable(down):
            raise MigrationFailed(f"{self.path.name} must define async up(db) and down(db)")
        return cast(Step, up), cast(Step, down)


def discover(directory: Path = MIGRATIONS_DIR) -> list[MigrationFile]:
    """The migration files of `directory` in version order; a repeated version is an error."""
    found: list[MigrationFile] = []
    for path in sorted(directory.glob("m*.py")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationFailed(f"{path.name}: name must be m<YYYYMMDDHHMMSS>_<name>.py")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found.append(MigrationFile(match["version"], match["name"], path, checksum))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationFailed(f"two migration files share a version in {directory}")
    return sorted(found, key=lambda m: m.version)


@dataclass(frozen=True, slots=True)
class HeldLock:
    """The migrations lease as a run holds it."""

    locks: LockRepository
    owner: str

    async def renew(self) -> bool:
        """Push the expiry out; False when the run no longer holds it (never re-creates it)."""
        return await self.locks.renew(LOCK_NAME, owner=self.owner, seconds=LEASE_SECONDS)

    async def confirm(self, step: str) -> None:
        """Refuse to record `step` unless the run still holds the lease."""
        if not await self.renew():
            raise MigrationLockLost(
                f"lost the migrations lock during {step} (another run may have taken it "
                "over); it is left unrecorded and runs again next time: check its data first")


@asynccontextmanager
async def migration_lock(
    db: AsyncDatabase[dict[str, Any]], *, owner: str | None = None, wait: float = 0.0,
    poll: float = 0.2, clock: Clock = utcnow, sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[HeldLock]:
    """Hold the migrations lease for the block; wait up to `wait` seconds for it."""
    held = HeldLock(LockRepository(db, clock=clock), owner or new_owner())
    deadline = clock() + timedelta(seconds=wait)
    while not await held.locks.acquire(LOCK_NAME, owner=held.owner, seconds=LEASE_SECONDS):
        if clock() >= deadline:
            holder = await held.locks.holder(LOCK_NAME)
            who, since = (holder.owner, holder.acquired_at) if holder else ("?", "?")
            raise MigrationLocked(
                f"another migration run holds the lock (owner {who}, since {since}); try "
                "again when it has finished")
        await sleep(poll)
    heartbeat = asyncio.create_task(_renew_while_held(held, sleep))
    try:
        yield held
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await held.locks.release(LOCK_NAME, owner=held.owner)


async def _renew_while_held(held: HeldLock, sleep: Sleep) -> None:
    while True:
        await sleep(LEASE_SECONDS / 3)
        try:
            if not await held.renew():
                return
        except (FidusError, PyMongoError):
            # Two more beats fall inside the lease; the check before recording catches a loss.
            continue


@dataclass(slots=True)
class MigrationStatus:
    file: MigrationFile | None
    version: str
    name: str
    applied: MigrationRecord | None

    @property
    def changed(self) -> bool:
        return (self.file is not None and self.applied is not None
                and self.applied.checksum != self.file.checksum)


async def status(
    db: AsyncDatabase[dict[str, Any]], directory: Path = MIGRATIONS_DIR
) -> list[MigrationStatus]:
    files = {m.version: m for m in discover(directory)}
    applied = {record.version: record for record in await MigrationRepository(db).applied()}
    result = []
    for version in sorted(set(files) | set(applied)):
        file = files.get(version)
        record = applied.get(version)
        name = file.name if file else record.name if record else "?"
        result.append(MigrationStatus(file, version, name, record))
    return result


def _refuse_changed(statuses: list[MigrationStatus]) -> None:
    changed = [s for s in statuses if s.changed]
    if changed:
        listing = ", ".join(f"{s.version}_{s.name}" for s in changed)
        raise MigrationChanged(
            f"applied migration file(s) changed since they ran: {listing}; restore the "
            "original file and add a new migration for the change")


@dataclass(slots=True)
class MigrateReport:
    direction: str
    dry_run: bool
    done: list[tuple[str, str, int]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)


async def _plan_up(
    db: AsyncDatabase[dict[str, Any]], directory: Path, report: MigrateReport
) -> list[MigrationFile]:
    statuses = await status(db, directory)
    _refuse_changed(statuses)
    report.missing_files = [s.version for s in statuses if s.file is None]
    pending = [s.file for s in statuses if s.applied is None and s.file is not None]
    report.pending = [(m.version, m.name) for m in pending]
    return pending


async def _plan_down(
    db: AsyncDatabase[dict[str, Any]], version: str, directory: Path, report: MigrateReport
) -> list[MigrationStatus]:
    statuses = await status(db, directory)
    if not any(s.version == version and s.applied for s in statuses):
        raise CommandRefused(f"migration {version} is not applied")
    targets = [s for s in reversed(statuses) if s.applied and s.version >= version]
    _refuse_changed(targets)
    missing = [s.version for s in targets if s.file is None]
    if missing:
        raise MigrationChanged(f"cannot revert {', '.join(missing)}: the migration file is gone")
    report.pending = [(s.version, s.name) for s in targets]
    return targets


async def migrate_up(
    db: AsyncDatabase[dict[str, Any]],
    *,
    directory: Path = MIGRATIONS_DIR,
    dry_run: bool = False,
    lock_wait: float = 0.0,
    owner: str | None = None,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> MigrateReport:
    """Apply every pending migration in version order, each recorded as soon as it succeeds."""
    report = MigrateReport("up", dry_run)
    if dry_run:
        # A dry run only reads, so it neither takes nor waits for the lock.
        await _plan_up(db, directory, report)
        return report
    records = MigrationRepository(db, clock=clock)
    async with migration_lock(db, owner=owner, wait=lock_wait, clock=clock,
                              sleep=sleep) as held:
        pending = await _plan_up(db, directory, report)
        for migration in pending:
            up, _ = migration.load()
            started = time.perf_counter()
            try:
                await up(db)
            except Exception as error:
                raise MigrationFailed(
                    f"{migration.version}_{migration.name} failed: {error}; the migrations "
                    "before it are recorded, it is not") from error
            duration = int((time.perf_counter() - started) * 1000)
            await held.confirm(f"{migration.version}_{migration.name}")
            await records.record_applied(MigrationRecord(
                version=migration.version, name=migration.name, checksum=migration.checksum,
                applied_at=clock(), duration_ms=duration, applied_by=held.owner[:200]))
            report.done.append((migration.version, migration.name, duration))
    if report.done:
        await record_script_run(db, script="migrate", action="data_script.migrate",
                                run_id=f"migrate-{uuid.uuid4().hex[:12]}",
                                summary={"direction": "up",
                                         "applied": [v for v, _, _ in report.done]})
    return report


async def migrate_down(
    db: AsyncDatabase[dict[str, Any]],
    version: str,
    *,
    directory: Path = MIGRATIONS_DIR,
    dry_run: bool = False,
    lock_wait: float = 0.0,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
) -> MigrateReport:
    """Revert the applied migrations from the newest down to and including `version`."""
    report = MigrateReport("down", dry_run)
    if dry_run:
        await _plan_down(db, version, directory, report)
        return report
    records = MigrationRepository(db, clock=clock)
    async with migration_lock(db, wait=lock_wait, clock=clock, sleep=sleep) as held:
        targets = await _plan_down(db, version, directory, report)
        for item in targets:
            assert item.file is not None
            _, down = item.file.load()
            started = time.perf_counter()
            try:
                await down(db)
            except Exception as error:
                raise MigrationFailed(f"reverting {item.version}_{item.name} failed: {error}; "
                                      "it is still recorded as applied") from error
            await held.confirm(f"reverting {item.version}_{item.name}")
            await records.record_reverted(item.version)
            report.done.append((item.version, item.name,
                                int((time.perf_counter() - started) * 1000)))
    await record_script_run(db, script="migrate", action="data_script.migrate",
                            run_id=f"migrate-{uuid.uuid4().hex[:12]}",
                            summary={"direction": "down",
                                     "reverted": [v for v, _, _ in report.done]})
    return report


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    result = base_parser(
        "make migrate",
        "Apply pending migrations in version order under a lock.\n"
        "--down VERSION reverts the applied migrations from the newest down to VERSION.",
        writes=True,
    )
    result.add_argument("--down", metavar="VERSION", help="revert down to and including VERSION")
    result.add_argument("--status", action="store_true", help="list migrations, change nothing")
    result.add_argument("--lock-wait", type=float, default=30.0,
                        help="seconds to wait for another run's lock (default 30)")
    result.add_argument("--dir", type=Path, default=MIGRATIONS_DIR, help=argparse.SUPPRESS)
    return result


async def _command(ctx: Context) -> Outcome:
    args = ctx.args
    if args.status:
        rows: list[tuple[Any, ...]] = [
            (s.version, s.name, "CHANGED" if s.changed else "applied" if s.applied else "pending",
             s.applied.applied_at if s.applied else "")
            for s in await status(ctx.db, args.dir)]
        return Outcome(title="migrations", columns=("version", "name", "state", "applied at"),
                       rows=rows, data={"migrations": [dict(zip(("version", "name", "state",
                                                                  "applied_at"), r, strict=True))
                                                        for r in rows]},
                       findings=any(r[2] == "CHANGED" for r in rows))
    if args.down:
        report = await migrate_down(ctx.db, args.down, directory=args.dir, dry_run=args.dry_run,
                                    lock_wait=args.lock_wait)
    else:
        report = await migrate_up(ctx.db, directory=args.dir, dry_run=args.dry_run,
                                  lock_wait=args.lock_wait)
    verb = {"up": "applied", "down": "reverted"}[report.direction]
    if report.dry_run:
        rows = [(v, n, f"would be {verb}", "") for v, n in report.pending]
    else:
        rows = [(v, n, verb, ms) for v, n, ms in report.done]
    messages = [f"recorded as applied but no file: {v}" for v in report.missing_files]
    return Outcome(
        title=f"migrations {verb}: {len(report.done)}" if not report.dry_run
        else f"migrations that would be {verb}: {len(report.pending)}",
        columns=("version", "name", "result", "ms"),
        rows=rows,
        data={"direction": report.direction, "dry_run": report.dry_run,
              "done": [{"version": v, "name": n, "duration_ms": ms} for v, n, ms in report.done],
              "pending": [{"version": v, "name": n} for v, n in report.pending],
              "missing_files": report.missing_files},
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings)
