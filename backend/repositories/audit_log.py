"""The audit log: append-only. There is no update or delete here on purpose."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import BulkWriteError, PyMongoError

from backend.errors import PermissionDenied
from backend.models.audit_log import AuditRecord
from backend.repositories._errors import (
    DOCUMENT_VALIDATION_FAILURE,
    DUPLICATE_KEY,
    driver_errors,
    translate,
)
from backend.repositories.base import Page, Repository

logger = logging.getLogger(__name__)


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

    async def append_once(self, entries: Sequence[Mapping[str, Any]]) -> tuple[set[Any], int]:
        """Copy outbox entries under their own ids, in one round trip: returns the ids now in
        the log (copied now or before) and how many were copied now. An entry the log's
        validator refuses is left out of both and logged; it stays in its outbox."""
        documents = [dict(entry) for entry in entries]
        if not documents:
            return set(), 0
        try:
            result = await self._collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            details = error.details or {}
            refused: set[Any] = set()
            for item in details.get("writeErrors", []):
                if item.get("code") == DUPLICATE_KEY:
                    continue
                if item.get("code") != DOCUMENT_VALIDATION_FAILURE or details.get(
                        "writeConcernErrors"):
                    raise translate(error, self.collection_name) from error
                refused.add(documents[item["index"]]["_id"])
                logger.error("audit_log refused record %s: %s", documents[item["index"]]["_id"],
                             str(item.get("errmsg", ""))[:200])
            return ({d["_id"] for d in documents} - refused,
                    int(details.get("nInserted", 0)))
        except PyMongoError as error:
            raise translate(error, self.collection_name) from error
        return {d["_id"] for d in documents}, len(result.inserted_ids)

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
