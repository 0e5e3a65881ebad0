"""KYC document metadata; the content lives in GridFS or a configured directory."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from backend.models.documents import KycDocument, VerificationStatus
from backend.repositories.base import Page, Repository


class DocumentRepository(Repository[KycDocument]):
    collection_name = "documents"
    model = KycDocument

    async def for_user(self, user_id: ObjectId) -> list[KycDocument]:
        return await self.find({"user_id": user_id}, sort=(("created_at", DESCENDING),))

    async def pending(self, *, page: int = 1, page_size: int = 20) -> Page[KycDocument]:
        query: dict[str, Any] = {"verification_status": VerificationStatus.PENDING.value}
        return await self.page(query, sort=(("created_at", ASCENDING),), page=page,
                               page_size=page_size)
