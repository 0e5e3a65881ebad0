"""Documents the de-duplication script moved aside, each restorable by its run id.

A quarantined document is kept as it was, BSON values included, so a rollback restores it field
by field.
"""

from __future__ import annotations

from collections.abc import Sequence

from bson import ObjectId

from backend.models.dedupe_quarantine import QuarantinedDocument
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository


class DedupeQuarantineRepository(Repository[QuarantinedDocument]):
    collection_name = "dedupe_quarantine"
    model = QuarantinedDocument
    versioned = False
    timestamped = False

    async def quarantine(self, records: Sequence[QuarantinedDocument]) -> None:
        """Store the records in order, in one round trip; the first refused one stops the rest
        (a document already quarantined by the same run raises DuplicateEntity)."""
        if not records:
            return
        with driver_errors(self.collection_name):
            await self._collection.insert_many([r.to_document() for r in records], ordered=True)

    async def withdraw(self, run_id: str, *, original_ids: Sequence[ObjectId]) -> int:
        """Drop a run's records of these documents (they stayed where they were)."""
        with driver_errors(self.collection_name):
            result = await self._collection.delete_many(
                {"run_id": run_id, "original_id": {"$in": list(original_ids)}})
        return result.deleted_count

    async def of_run(self, run_id: str) -> list[QuarantinedDocument]:
        """Everything a run quarantined, in the order it was quarantined."""
        return await self._find({"run_id": run_id}, sort=(("_id", 1),))

    async def awaiting_restore(self, run_id: str) -> int:
        """How many of a run's documents a rollback would put back."""
        return await self._count({"run_id": run_id, "restored_at": None})

    async def mark_restored(self, records: Sequence[QuarantinedDocument]) -> int:
        """Note that a rollback put these records' documents back, at the repository's clock."""
        if not records:
            return 0
        with driver_errors(self.collection_name):
            result = await self._collection.update_many(
                {"_id": {"$in": [r.id for r in records]}},
                {"$set": {"restored_at": self.clock()}})
        return result.modified_count
