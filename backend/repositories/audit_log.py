"""The audit log: append-only. There is no update or delete here on purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from backend.errors import DuplicateEntity, PermissionDenied
from backend.models.audit_log import AuditRecord
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository


class AuditLogRepository(Repository[AuditRecord]):
    collection_name = "audit_log"
    model = AuditRecord
    versioned = False
    timestamped = False

    async def append(self, record: AuditRecord) -> AuditRecord:
        document = record.to_document()
        with driver_errors(self.collection_name):
            result = await self._collection.insert_one(document)
        document["_id"] = result.inserted_id
        return AuditRecord.from_document(document)

    async def append_once(self, entry: dict[str, Any]) -> bool:
        """Copy an outbox entry under its own id; False when it was copied before."""
        try:
            with driver_errors(self.collection_name):
                await self._collection.insert_one(dict(entry))
        except DuplicateEntity:
            return False
        return True

    async def ids_present(self, ids: list[Any]) -> set[Any]:
        raws = await self._find_raw({"_id": {"$in": ids}}, projection={"_id": 1})
        return {raw["_id"] for raw in raws}

    async def update(self, *args: Any, **kwargs: Any) -> AuditRecord:
        raise PermissionDenied("the audit log is append-only", code="AUDIT_LOG_APPEND_ONLY")

    async def delete(self, *args: Any, **kwargs: Any) -> AuditRecord:
        raise PermissionDenied("the audit log is append-only", code="AUDIT_LOG_APPEND_ONLY")

    async def search(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        actor_id: Any = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> Page[AuditRecord]:
        query: dict[str, Any] = {}
        if entity_type:
            query["entity_type"] = entity_type
        if entity_id:
            query["entity_id"] = entity_id
        if actor_id is not None:
            query["actor_id"] = actor_id
        if action:
            query["action"] = action
        if since or until:
            query["at"] = {k: v for k, v in (("$gte", since), ("$lt", until)) if v is not None}
        return await self._page(query, sort=(("at", DESCENDING),), page=page, page_size=page_size)
