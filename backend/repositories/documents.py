"""KYC document metadata; the content lives in GridFS or a configured directory."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING

from backend.db.types import Database
from backend.models.documents import KycDocument, VerificationStatus
from backend.repositories._errors import driver_errors
from backend.repositories.base import Page, Repository

KYC_BUCKET = "kyc_files"


class DocumentRepository(Repository[KycDocument]):
    collection_name = "documents"
    model = KycDocument

    async def for_user(self, user_id: ObjectId) -> list[KycDocument]:
        return await self._find({"user_id": user_id}, sort=(("created_at", DESCENDING),))

    async def pending(self, *, page: int = 1, page_size: int = 20) -> Page[KycDocument]:
        query: dict[str, Any] = {"verification_status": VerificationStatus.PENDING.value}
        return await self._page(query, sort=(("created_at", ASCENDING),), page=page,
                               page_size=page_size)


class KycFileStore:
    """The content of KYC documents stored in MongoDB (GridFS bucket `kyc_files`)."""

    def __init__(self, db: Database) -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name=KYC_BUCKET)

    async def put(self, filename: str, content: bytes) -> str:
        with driver_errors(KYC_BUCKET):
            return str(await self._bucket.upload_from_stream(filename, content))

    async def read(self, key: str) -> bytes | None:
        """The content, or None when no file has this key."""
        try:
            file_id = ObjectId(key)
        except InvalidId:
            return None
        try:
            with driver_errors(KYC_BUCKET):
                stream = await self._bucket.open_download_stream(file_id)
                content: bytes = await stream.read()
        except NoFile:
            return None
        return content
