"""Admin and managers: the CRM pipeline of prospects. Converting a prospect into a client is an
admin's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Body, Response, status
from pydantic import SecretStr

from backend.api.deps import (
    AdminUser,
    IdempotencyKeyHeader,
    ObjectIdPath,
    ObjectIdQuery,
    PageDep,
    ServicesDep,
    StaffUser,
)
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
    summary="Add a prospect (as a lead); the same Idempotency-Key returns the first one (200)",
    status_code=status.HTTP_201_CREATED,
    response_model=ProspectRead,
    responses={200: {"model": ProspectRead,
                     "description": "Already added under this Idempotency-Key: the first one"},
               **signed_in(409)},
)
async def create_prospect(
    staff: StaffUser,
    services: ServicesDep,
    response: Response,
    body: Annotated[ProspectCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    idempotency_key: IdempotencyKeyHeader = None,
) -> ProspectRead:
    result = await services.crm.create_once(body, actor=staff.actor,
                                            idempotency_key=idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return ProspectRead.model_validate(result.item)


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
    description="Exactly one request creates the client (201). Any later or concurrent one "
                "answers 409 `ALREADY_CONVERTED` with the client's id in `details.client_id`, "
                "except a retry under the Idempotency-Key of the request that created it, "
                "which answers the same conversion again (200).",
    status_code=status.HTTP_201_CREATED,
    response_model=ProspectConversion,
    responses={200: {"model": ProspectConversion,
                     "description": "Converted by the first request under this "
                                    "Idempotency-Key: the same client"},
               **signed_in(404, 409)},
)
async def convert_prospect(prospect_id: ProspectId, body: ProspectConversionRequest,
                           admin: AdminUser, services: ServicesDep, response: Response,
                           idempotency_key: IdempotencyKeyHeader = None) -> ProspectConversion:
    prospect = await services.crm.get(prospect_id)
    account = UserCreate(
        email=body.email or prospect.email, username=body.username,
        password=SecretStr(body.password.get_secret_value()), first_name=body.first_name,
        last_name=body.last_name, phone=body.phone or prospect.phone,
        user_type=UserType.CLIENT)
    conversion = await services.crm.convert(prospect_id, account, actor=admin.actor,
                                            idempotency_key=idempotency_key)
    if not conversion.created:
        response.status_code = status.HTTP_200_OK
    return ProspectConversion(prospect=ProspectRead.model_validate(conversion.prospect),
                              client=UserRead.model_validate(conversion.client))
