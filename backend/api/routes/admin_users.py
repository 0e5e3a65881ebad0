"""Admin: users (search, create, update, deactivate, statistics) and KYC/AML decisions.

Managers may read users; every change is an admin's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from backend.api.deps import (
    AdminUser,
    IdempotencyKeyHeader,
    ObjectIdPath,
    PageDep,
    ServicesDep,
    StaffUser,
)
from backend.api.schemas import (
    DeactivationRequest,
    PageOf,
    UserStatistics,
    signed_in,
)
from backend.models.users import (
    AmlDecision,
    KycDecision,
    KycStatus,
    UserCreate,
    UserRead,
    UserType,
    UserUpdate,
)

router = APIRouter(prefix="/admin/users", tags=["admin: users"])

UserId = ObjectIdPath

_CREATE_EXAMPLES: dict[str, Any] = {
    "client": {"summary": "A new client", "value": {
        "email": "grace@fidus.example", "username": "grace", "password": "a-long-passphrase",
        "first_name": "Grace", "last_name": "Hopper", "phone": "+14155550100"}},
}


@router.get(
    "",
    summary="Search users (name, e-mail, username) with filters; newest first",
    response_model=PageOf[UserRead],
    responses=signed_in(),
)
async def list_users(
    staff: StaffUser,
    services: ServicesDep,
    pagination: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="text in name, e-mail or "
                                                                "username")] = None,
    user_type: UserType | None = None,
    is_active: bool | None = None,
    kyc_status: KycStatus | None = None,
) -> PageOf[UserRead]:
    page = await services.users.search(
        text=q, user_type=user_type, is_active=is_active,
        kyc_status=kyc_status.value if kyc_status else None,
        page=pagination.page, page_size=pagination.page_size)
    return PageOf[UserRead].of(page, UserRead.model_validate)


@router.get(
    "/statistics",
    summary="Totals by type, KYC status and activity, and sign-ups per month",
    response_model=UserStatistics,
    responses=signed_in(),
)
async def user_statistics(staff: StaffUser, services: ServicesDep) -> UserStatistics:
    return UserStatistics.model_validate(await services.users.statistics())


@router.post(
    "",
    summary="Create a user (a client unless user_type says otherwise); the same "
            "Idempotency-Key returns the first one (200)",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={200: {"model": UserRead,
                     "description": "Already created under this Idempotency-Key: the first one"},
               **signed_in(409)},
)
async def create_user(
    admin: AdminUser,
    services: ServicesDep,
    response: Response,
    body: Annotated[UserCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    idempotency_key: IdempotencyKeyHeader = None,
) -> UserRead:
    result = await services.users.create_user_once(body, actor=admin.actor,
                                                   idempotency_key=idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return UserRead.model_validate(result.item)


@router.get(
    "/{user_id}",
    summary="One user",
    response_model=UserRead,
    responses=signed_in(404),
)
async def get_user(user_id: UserId, staff: StaffUser, services: ServicesDep) -> UserRead:
    return UserRead.model_validate(await services.users.get(user_id))


@router.patch(
    "/{user_id}",
    summary="Change a user's fields (only those given); deactivation ends its sessions",
    response_model=UserRead,
    responses=signed_in(404, 409),
)
async def update_user(user_id: UserId, body: UserUpdate, admin: AdminUser,
                      services: ServicesDep) -> UserRead:
    return UserRead.model_validate(
        await services.users.update_user(user_id, body, actor=admin.actor))


@router.post(
    "/{user_id}/deactivate",
    summary="Deactivate a user; every session of the user ends at once",
    response_model=UserRead,
    responses=signed_in(404, 409),
)
async def deactivate_user(user_id: UserId, admin: AdminUser, services: ServicesDep,
                          body: DeactivationRequest | None = None) -> UserRead:
    reason = body.reason if body else None
    return UserRead.model_validate(
        await services.users.deactivate(user_id, actor=admin.actor, reason=reason))


@router.post(
    "/{user_id}/kyc",
    summary="Record a KYC decision (only the allowed moves; a rejection needs a reason)",
    response_model=UserRead,
    responses=signed_in(404, 409),
)
async def decide_kyc(
    user_id: UserId,
    admin: AdminUser,
    services: ServicesDep,
    body: Annotated[KycDecision, Body(openapi_examples={"approve": {"value": {
        "kyc_status": "approved", "reason": "passport and proof of address checked"}}})],
) -> UserRead:
    return UserRead.model_validate(await services.users.set_kyc(
        user_id, body.kyc_status, actor=admin.actor, reason=body.reason))


@router.post(
    "/{user_id}/aml",
    summary="Record an AML decision (only the allowed moves; a rejection needs a reason)",
    response_model=UserRead,
    responses=signed_in(404, 409),
)
async def decide_aml(
    user_id: UserId,
    admin: AdminUser,
    services: ServicesDep,
    body: Annotated[AmlDecision, Body(openapi_examples={"approve": {"value": {
        "aml_status": "approved", "reason": "screening clear"}}})],
) -> UserRead:
    return UserRead.model_validate(await services.users.set_aml(
        user_id, body.aml_status, actor=admin.actor, reason=body.reason))
