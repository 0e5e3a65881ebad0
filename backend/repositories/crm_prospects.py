"""The CRM pipeline of prospects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from backend.models.crm_prospects import CrmProspect, ProspectStage
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository


class CrmProspectRepository(Repository[CrmProspect]):
    collection_name = "crm_prospects"
    model = CrmProspect

    async def search(
        self,
        *,
        stage: ProspectStage | None = None,
        assigned_to: ObjectId | None = None,
        follow_up_due_by: datetime | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[CrmProspect]:
        query: dict[str, Any] = {}
        if stage is not None:
            query["stage"] = stage.value
        if assigned_to is not None:
            query["assigned_to"] = assigned_to
        sort: tuple[tuple[str, int], ...] = (("updated_at", DESCENDING),)
        if follow_up_due_by is not None:
            # Explicit type: prospects with no follow-up date are never "due".
            query["next_follow_up"] = {"$type": "date", "$lte": follow_up_due_by}
            query.setdefault("stage", {"$nin": ["won", "lost"]})
            sort = (("next_follow_up", ASCENDING),)
        return await self._page(query, sort=sort, page=page, page_size=page_size)

    async def release_conversion(self, prospect_id: ObjectId) -> None:
        """Give up a conversion claim that did not create its client."""
        with driver_errors(self.collection_name):
            await self._collection.update_one(
                {"_id": prospect_id, "converted_client_id": None},
                {"$set": {"converted_at": None}})
