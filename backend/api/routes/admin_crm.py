"""Admin and managers: the CRM pipeline of prospects. Converting a prospect into a client is an
admin's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Body, status
from pydantic import SecretStr

from backend.api.deps import AdminUser, ObjectIdPath, ObjectIdQuery, PageDep, ServicesDep, StaffUser
from backend.api.schemas import (
    PageOf,
    ProspectConversion,
    ProspectConversionRequest,
    signed_in,
)
from backend.models._types import UtcDateTime
from backend.models.crm_prospects import (
    ProspectCreate,
    ProspectRead,
    ProspectStage,
    ProspectStageMove,
    ProspectUpdate,
)
from backend.models.users import UserCreate, UserRead, UserType

router = APIRouter(prefix="/admin/crm/prospects", tags=["admin: CRM"])

ProspectId = ObjectIdPath

_CREATE_EXAMPLES: dict[str, Any] = {
    "lead": {"summary": "A new lead", "value": {
        "name": "Katherine Johnson", "email": "katherine@fidus.example",
        "phone": "+14155550101", "source": "referral",
        "next_follow_up": "2026-12-01T09:00:00Z"}},
}


@router.get(
    "",
    summary="Prospects by stage, assignee and follow-up due date",
    description="With `follow_up_due_by`, open prospects whose follow-up is due by then, "
                "soonest first; otherwise the most recently changed first.",
    response_model=PageOf[ProspectRead],
    responses=signed_in(),
)
async def list_prospects(
    staff: StaffUser,
    services: ServicesDep,
    pagination: PageDep,
    stage: ProspectStage | None = None,
    assigned_to: ObjectIdQuery = None,
    follow_up_due_by: UtcDateTime | None = None,
) -> PageOf[ProspectRead]:
    due: datetime | None = follow_up_due_by
    page = await services.crm.search(
        stage=stage, assigned_to=ObjectId(assigned_to) if assigned_to else None,
        follow_up_due_by=due, page=pagination.page, page_size=pagination.page_size)
    return PageOf[ProspectRead].of(page, ProspectRead.model_validate)


@router.post(
    "",
    summary="Add a prospect (as a lead)",
    status_code=status.HTTP_201_CREATED,
    response_model=ProspectRead,
    responses=signed_in(409),
)
async def create_prospect(
    staff: StaffUser,
    services: ServicesDep,
    body: Annotated[ProspectCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
) -> ProspectRead:
    return ProspectRead.model_validate(await services.crm.create(body, actor=staff.actor))


@router.get(
    "/{prospect_id}",
    summary="One prospect",
    response_model=ProspectRead,
    responses=signed_in(404),
)
async def get_prospect(prospect_id: ProspectId, staff: StaffUser,
                       services: ServicesDep) -> ProspectRead:
    return ProspectRead.model_validate(await services.crm.get(prospect_id))


@router.patch(
    "/{prospect_id}",
    summary="Change a prospect's details",
    response_model=ProspectRead,
    responses=signed_in(404, 409),
)
async def update_prospect(prospect_id: ProspectId, body: ProspectUpdate, staff: StaffUser,
                          services: ServicesDep) -> ProspectRead:
    return ProspectRead.model_validate(
        await services.crm.update(prospect_id, body, actor=staff.actor))


@router.post(
    "/{prospect_id}/stage",
    summary="Move a prospect along the pipeline (only the allowed moves; lost needs a reason)",
    response_model=ProspectRead,
    responses=signed_in(404, 409),
)
async def move_prospect(prospect_id: ProspectId, body: ProspectStageMove, staff: StaffUser,
                        services: ServicesDep) -> ProspectRead:
    return ProspectRead.model_validate(await services.crm.move(
        prospect_id, body.stage, actor=staff.actor, reason=body.reason,
        expected_version=body.version))


@router.post(
    "/{prospect_id}/convert",
    summary="Create the client account of a won prospect (once)",
    status_code=status.HTTP_201_CREATED,
    response_model=ProspectConversion,
    responses=signed_in(404, 409),
)
async def convert_prospect(prospect_id: ProspectId, body: ProspectConversionRequest,
                           admin: AdminUser, services: ServicesDep) -> ProspectConversion:
    prospect = await services.crm.get(prospect_id)
    account = UserCreate(
        email=body.email or prospect.email, username=body.username,
        password=SecretStr(body.password.get_secret_value()), first_name=body.first_name,
        last_name=body.last_name, phone=body.phone or prospect.phone,
        user_type=UserType.CLIENT)
    converted, client = await services.crm.convert(prospect_id, account, actor=admin.actor)
    return ProspectConversion(prospect=ProspectRead.model_validate(converted),
                              client=UserRead.model_validate(client))
