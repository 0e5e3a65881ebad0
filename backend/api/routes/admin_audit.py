"""Admin: the audit log, filtered by entity, actor, action and time; newest first."""

from __future__ import annotations

from typing import Annotated

from bson import ObjectId
from fastapi import APIRouter, Query

from backend.api.deps import AdminUser, ObjectIdQuery, PageDep, ServicesDep
from backend.api.schemas import PageOf, signed_in
from backend.models._types import UtcDateTime
from backend.models.audit_log import AuditRecordRead

router = APIRouter(prefix="/admin/audit", tags=["admin: audit"])


@router.get(
    "",
    summary="Audit records: who changed what, when, with before and after",
    response_model=PageOf[AuditRecordRead],
    responses=signed_in(),
)
async def search_audit(
    admin: AdminUser,
    services: ServicesDep,
    pagination: PageDep,
    entity_type: Annotated[str | None, Query(pattern="^[a-z][a-z0-9_]{1,39}$",
                                             examples=["investment"])] = None,
    entity_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    actor_id: ObjectIdQuery = None,
    action: Annotated[str | None, Query(min_length=3, max_length=100,
                                        examples=["user.kyc.approved"])] = None,
    since: Annotated[UtcDateTime | None, Query(description="at or after (inclusive)")] = None,
    until: Annotated[UtcDateTime | None, Query(description="before (exclusive)")] = None,
) -> PageOf[AuditRecordRead]:
    page = await services.audit.search(
        entity_type=entity_type, entity_id=entity_id,
        actor_id=ObjectId(actor_id) if actor_id else None, action=action, since=since,
        until=until, page=pagination.page, page_size=pagination.page_size)
    return PageOf[AuditRecordRead].of(page, AuditRecordRead.model_validate)
