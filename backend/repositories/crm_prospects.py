"""The CRM pipeline of prospects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument

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

    async def claim_conversion(self, prospect_id: ObjectId, *, client_id: ObjectId,
                               now: datetime) -> CrmProspect | None:
        """Claim a won, unconverted prospect's conversion for a client to be created under
        `client_id`, unless an earlier attempt claimed it already; returns the prospect as
        stored afterwards (None when it does not exist), whose `conversion_client_id` is the
        id every attempt must use.

        The claim is bookkeeping of the conversion, not a change of the prospect: it moves
        neither `version` nor `updated_at`, and the conversion's audit record shows it.
        """
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one_and_update(
                {"_id": prospect_id, "stage": ProspectStage.WON.value,
                 "converted_client_id": None, "conversion_client_id": None},
                {"$set": {"conversion_client_id": client_id, "conversion_claimed_at": now}},
                return_document=ReturnDocument.AFTER)
            if raw is None:
                raw = await self._collection.find_one({"_id": prospect_id})
        return None if raw is None else self._load(raw)

    async def release_conversion(self, prospect_id: ObjectId, *, client_id: ObjectId) -> bool:
        """Give up a claim whose client could not be created (its e-mail or username is
        another user's); True when it was released."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"_id": prospect_id, "converted_client_id": None,
                 "conversion_client_id": client_id},
                {"$set": {"conversion_client_id": None, "conversion_claimed_at": None}})
        return result.modified_count == 1
