"""Applied migrations, one record per version (the migration runner reads and writes these).

Stored in `migrations` (validator and indexes: `schemas/migrations.json`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import MAX_SAFE_INT
from backend.models._types import Sha256Hex, UtcDateTime

MigrationVersion = Annotated[
    str, StringConstraints(min_length=14, max_length=14, pattern=r"^[0-9]{14}$")
]
MigrationName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]{1,100}$")
]


class MigrationRecord(StoredDocument):
    collection_name = "migrations"

    version: MigrationVersion
    name: MigrationName
    checksum: Sha256Hex
    applied_at: UtcDateTime
    duration_ms: Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INT)]
    applied_by: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
