"""CRM prospects: the pipeline from lead to won (converted into a client) or lost.

Stored in `crm_prospects` (validator and indexes: `schemas/crm_prospects.json`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import (
    MULTI_LINE,
    ONE_LINE,
    ExpectedVersion,
    IdempotencyKey,
    NotNull,
    Reason,
    RequestEmail,
    Version,
)
from backend.models._types import EmailAddress, ObjectIdStr, PhoneNumber, PyObjectId, UtcDateTime

ProspectName = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]
Source = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
Notes = Annotated[str, StringConstraints(min_length=1, max_length=5000), MULTI_LINE]


class ProspectStage(StrEnum):
    LEAD = "lead"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


class CrmProspect(StoredDocument):
    collection_name = "crm_prospects"
    audited = True

    name: ProspectName
    email: EmailAddress
    phone: PhoneNumber | None = None
    stage: ProspectStage
    stage_changed_at: UtcDateTime | None = None
    assigned_to: PyObjectId | None = None
    next_follow_up: UtcDateTime | None = None
    source: Source | None = None
    notes: Notes | None = None
    lost_reason: Reason | None = None
    converted_client_id: PyObjectId | None = None
    converted_at: UtcDateTime | None = None
    #: The conversion's claim: the id reserved for the client it creates, set once, so every
    #: attempt (a retry, a concurrent twin) creates that same client or finds it created.
    conversion_client_id: PyObjectId | None = None
    conversion_claimed_at: UtcDateTime | None = None
    idempotency_key: IdempotencyKey | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version


class ProspectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProspectName
    email: RequestEmail
    phone: PhoneNumber | None = None
    assigned_to: PyObjectId | None = None
    next_follow_up: UtcDateTime | None = None
    source: Source | None = None
    notes: Notes | None = None


class ProspectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProspectName | NotNull = None
    phone: PhoneNumber | None = None
    assigned_to: PyObjectId | None = None
    next_follow_up: UtcDateTime | None = None
    notes: Notes | None = None
    version: ExpectedVersion | None = Field(default=None,
                                             description="expected version, for conflicts")


class ProspectStageMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: ProspectStage
    reason: Reason | None = Field(default=None, description="required when moving to lost")
    version: ExpectedVersion | None = None


class ProspectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    name: str
    email: str
    phone: str | None = None
    stage: ProspectStage
    stage_changed_at: UtcDateTime | None = None
    assigned_to: ObjectIdStr | None = None
    next_follow_up: UtcDateTime | None = None
    source: str | None = None
    notes: str | None = None
    lost_reason: str | None = None
    converted_client_id: ObjectIdStr | None = None
    converted_at: UtcDateTime | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: int
