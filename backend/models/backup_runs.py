"""Backup runs and restore drills: what the worker and the operators did, and how it ended.

Stored in `backup_runs` (validator and indexes: `schemas/backup_runs.json`). `/health` reads the
last good backup and the last drill from here; the scheduler reads which slots are done.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import MAX_SAFE_INT
from backend.models._types import UtcDateTime

#: A one-line message: a finding of a drill, or why a run failed.
RunNote = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INT)]


class BackupRunKind(StrEnum):
    BACKUP = "backup"
    RESTORE_DRILL = "restore_drill"


class BackupTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


class BackupOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BackupConsistency(StrEnum):
    #: Every collection read at one cluster time (a replica set or sharded cluster).
    SNAPSHOT = "snapshot"
    #: Collections read one after another, audit records later than the reads left out.
    SEQUENTIAL = "sequential"


class BackupRun(StoredDocument):
    collection_name = "backup_runs"

    kind: BackupRunKind
    trigger: BackupTrigger
    outcome: BackupOutcome
    slot: UtcDateTime | None = None
    started_at: UtcDateTime
    finished_at: UtcDateTime
    file: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    size_bytes: Count | None = None
    encrypted: StrictBool | None = None
    consistency: BackupConsistency | None = None
    complete: StrictBool
    documents: Count | None = None
    checks: Annotated[list[RunNote], Field(max_length=50)] = Field(default_factory=list)
    error: RunNote | None = None
    host: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
