"""KYC documents: metadata here; the content in GridFS or under the document directory.

Stored in `documents` (validator and indexes: `schemas/documents.json`). The model is called
`KycDocument` so it is not mistaken for a MongoDB document in general.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import IdempotencyKey, Reason, Version
from backend.models._types import ObjectIdStr, PyObjectId, Sha256Hex, UtcDateTime

MIME_TYPE_PATTERN = r"^[a-z]+/[a-z0-9.+-]+$"
#: Largest content the validator accepts (100 MiB); the upload route sets its own, lower limit.
MAX_DOCUMENT_BYTES = 104_857_600

MimeType = Annotated[
    str, StringConstraints(min_length=3, max_length=100, pattern=MIME_TYPE_PATTERN)
]
StorageKey = Annotated[str, StringConstraints(min_length=1, max_length=512)]
#: New uploads are stored under a safe ASCII name (`services.documents.safe_filename`); names
#: stored before that may hold any text, so the stored form stays open and downloads clean it.
FileName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
SizeBytes = Annotated[StrictInt, Field(ge=1, le=MAX_DOCUMENT_BYTES)]


class DocumentType(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    PROOF_OF_ADDRESS = "proof_of_address"
    BANK_STATEMENT = "bank_statement"
    OTHER = "other"


class VerificationStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class DocumentStorage(StrEnum):
    GRIDFS = "gridfs"
    FILESYSTEM = "filesystem"


class KycDocument(StoredDocument):
    collection_name = "documents"
    audited = True

    user_id: PyObjectId
    document_type: DocumentType
    storage: DocumentStorage
    storage_key: StorageKey
    original_filename: FileName
    sha256: Sha256Hex
    size_bytes: SizeBytes
    mime_type: MimeType
    verification_status: VerificationStatus
    reviewed_by: PyObjectId | None = None
    reviewed_at: UtcDateTime | None = None
    rejection_reason: Reason | None = None
    idempotency_key: IdempotencyKey | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version


class DocumentReview(BaseModel):
    """An admin's verification decision on a pending document."""

    model_config = ConfigDict(extra="forbid")

    verification_status: Literal[VerificationStatus.VERIFIED, VerificationStatus.REJECTED]
    reason: Reason | None = Field(default=None, description="required when rejecting")


class DocumentRead(BaseModel):
    """Document metadata as the API shows it (no storage location)."""

    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    user_id: ObjectIdStr
    document_type: DocumentType
    original_filename: str
    sha256: str
    size_bytes: int
    mime_type: str
    verification_status: VerificationStatus
    reviewed_at: UtcDateTime | None = None
    rejection_reason: str | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
