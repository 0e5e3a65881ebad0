"""Backup files on disk: their names, the newest whole-database backup, and retention.

A file is named `<database>-<label>-<UTC stamp><suffix>`: label `scheduled` for the worker's
backups, `backup` for a whole-database `make backup`, `partial` for chosen collections, and
`before-restore`, `before-seed-reset`, `users-before-fix` for the safety copies the scripts
take. Retention deletes only `scheduled` files; what an operator or a script wrote stays until
someone deletes it.

Retention keeps, of the scheduled files:
- daily: the newest file of each of the `keep_daily` most recent days that have one;
- monthly: the first file of each of the `keep_monthly` most recent months that have one
  (a stable copy per month, from the first days of the month);
and deletes every other scheduled file, and scheduled `.partial` leftovers of runs that died.
Days and months are UTC calendar days and months of the file's stamp.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCHEDULED_LABEL = "scheduled"
#: Labels of files that hold the whole database, the ones a drill restores.
WHOLE_DATABASE_LABELS = (SCHEDULED_LABEL, "backup")
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_TAIL = re.compile(r"^(?P<label>[a-z][a-z-]*)-(?P<stamp>\d{8}T\d{12}Z)"
                   r"(?P<suffix>\.jsonl\.gz(?:\.enc)?)(?P<partial>\.partial)?$")
#: A `.partial` file this old belongs to a run that died, never to one still writing.
ABANDONED_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: Path
    label: str
    taken_at: datetime
    partial: bool = False


def parse_name(path: Path, database: str) -> BackupFile | None:
    """The file's label and time, or None when it is not a backup of `database`."""
    prefix = f"{database}-"
    if not path.name.startswith(prefix):
        return None
    match = _TAIL.match(path.name[len(prefix):])
    if match is None:
        return None
    taken_at = datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)
    return BackupFile(path, match["label"], taken_at, partial=bool(match["partial"]))


def backup_files(directory: Path, database: str, *,
                 labels: Sequence[str] = WHOLE_DATABASE_LABELS,
                 partial: bool = False) -> list[BackupFile]:
    """The backups of `database` in `directory` with one of `labels`, oldest first."""
    if not directory.is_dir():
        return []
    found = [parsed for path in directory.iterdir()
             if (parsed := parse_name(path, database)) is not None
             and parsed.label in labels and parsed.partial == partial]
    return sorted(found, key=lambda item: (item.taken_at, item.path.name))


def newest_backup(directory: Path, database: str) -> Path | None:
    files = backup_files(directory, database)
    return files[-1].path if files else None


def files_to_keep(files: Iterable[BackupFile], *, keep_daily: int,
                  keep_monthly: int) -> set[Path]:
    """The files the retention rule keeps (see the module docstring)."""
    newest_first = sorted(files, key=lambda item: item.taken_at, reverse=True)
    newest_of_day: dict[tuple[int, int, int], BackupFile] = {}
    first_of_month: dict[tuple[int, int], BackupFile] = {}
    for item in newest_first:
        day = (item.taken_at.year, item.taken_at.month, item.taken_at.day)
        newest_of_day.setdefault(day, item)
        # Walking newest first, the last file seen in a month is its first.
        first_of_month[(item.taken_at.year, item.taken_at.month)] = item
    days = sorted(newest_of_day, reverse=True)[:keep_daily]
    months = sorted(first_of_month, reverse=True)[:keep_monthly]
    return ({newest_of_day[day].path for day in days}
            | {first_of_month[month].path for month in months})


def apply_retention(directory: Path, database: str, *, keep_daily: int, keep_monthly: int,
                    now: datetime) -> list[Path]:
    """Delete the scheduled files the rule does not keep; returns what was deleted."""
    scheduled = backup_files(directory, database, labels=(SCHEDULED_LABEL,))
    keep = files_to_keep(scheduled, keep_daily=keep_daily, keep_monthly=keep_monthly)
    doomed = [item.path for item in scheduled if item.path not in keep]
    doomed += [item.path for item in backup_files(directory, database,
                                                  labels=(SCHEDULED_LABEL,), partial=True)
               if now - item.taken_at > ABANDONED_AFTER]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
