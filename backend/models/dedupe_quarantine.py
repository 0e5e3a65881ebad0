"""Documents moved aside by the de-duplication script, each restorable by its run id.

Stored in `dedupe_quarantine` (validator and indexes: `schemas/dedupe_quarantine.json`).
The original document is kept as it was, BSON values included, so a rollback restores it
field by field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints

from backend.models._base import StoredDocument
from backend.models._types import PyObjectId, UtcDateTime

RunId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
]


class QuarantineSource(StrEnum):
    INVESTMENTS = "investments"


class QuarantinedDocument(StoredDocument):
    collection_name = "dedupe_quarantine"

    run_id: RunId
    source_collection: QuarantineSource
    original_id: PyObjectId
    kept_id: PyObjectId
    document: dict[str, Any]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    quarantined_at: UtcDateTime
    restored_at: UtcDateTime | None = None
