"""The audit log: an append-only record of every change that matters to a regulator.

Stored in `audit_log` (validator and indexes: `schemas/audit_log.json`). Records are never
updated or deleted, so they carry no `version` and no `updated_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from bson import Decimal128, ObjectId
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from backend.models._base import StoredDocument, bson_ready
from backend.models._common import Reason
from backend.models._types import ObjectIdStr, PyObjectId, UtcDateTime, bson_to_decimal

ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
ENTITY_TYPE_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"

Action = Annotated[str, StringConstraints(min_length=3, max_length=100, pattern=ACTION_PATTERN)]
EntityType = Annotated[
    str, StringConstraints(min_length=2, max_length=40, pattern=ENTITY_TYPE_PATTERN)
]
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


#: Never copied into an audit snapshot.
SECRET_FIELDS = frozenset({
    "password_hash", "investor_password_encrypted", "access_token_encrypted",
    "refresh_token_encrypted", "token_hash", "session_token_hash",
})


def snapshot(value: Any) -> dict[str, Any] | None:
    """A stored-form copy of a model or document, without secrets (nor a pending outbox)."""
    if value is None:
        return None
    if isinstance(value, BaseModel) and hasattr(value, "to_document"):
        document: Mapping[str, Any] = value.to_document()
    elif isinstance(value, BaseModel):
        document = value.model_dump()
    else:
        document = value
    return {k: bson_ready(v) for k, v in document.items()
            if k not in SECRET_FIELDS and k != "_outbox"}


class ActorType(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    CLIENT = "client"
    SYSTEM = "system"
    SCRIPT = "script"


class AuditRecord(StoredDocument):
    collection_name = "audit_log"

    actor_id: PyObjectId | None = None
    actor_type: ActorType
    action: Action
    entity_type: EntityType
    entity_id: EntityId
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: Reason | None = None
    at: UtcDateTime
    request_id: RequestId | None = None


def _jsonable(value: Any) -> Any:
    """Stored snapshots hold BSON values; the API shows ids and money as strings."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return format(bson_to_decimal(value), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


class AuditRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    actor_id: ObjectIdStr | None = None
    actor_type: ActorType
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None
    at: UtcDateTime
    request_id: str | None = None

    @field_validator("before", "after", mode="before")
    @classmethod
    def _snapshot(cls, value: Any) -> Any:
        return None if value is None else _jsonable(value)
