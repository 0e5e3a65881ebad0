"""Applied migrations, one record per version: what the migration runner has done."""

from __future__ import annotations

from backend.models.migrations import MigrationRecord
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository


class MigrationRepository(Repository[MigrationRecord]):
    collection_name = "migrations"
    model = MigrationRecord
    versioned = False
    timestamped = False

    async def applied(self) -> list[MigrationRecord]:
        """Every applied migration, oldest version first."""
        return await self._find({}, sort=(("version", 1),))

    async def record_applied(self, record: MigrationRecord) -> MigrationRecord:
        """Record a migration as applied; a version already recorded raises DuplicateEntity."""
        return await self.create(record)

    async def record_reverted(self, version: str) -> bool:
        """Forget a migration's record once its backward step ran; False when there was none."""
        with driver_errors(self.collection_name):
            result = await self._collection.delete_one({"version": version})
        return result.deleted_count == 1
