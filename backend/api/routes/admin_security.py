"""Admin: lift a user's sign-in locks, or force a password reset. Both are audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from backend.api.deps import AdminUser, ServicesDep
from backend.api.schemas import signed_in
from backend.models._common import Reason
from backend.models.users import UserRead

router = APIRouter(prefix="/admin/users", tags=["admin: users"])

UserId = Annotated[str, Path(pattern="^[0-9a-f]{24}$", description="the user's id",
                             examples=["665f1c2ab8e4a1d2c3b4a5f6"])]


class SecurityActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = Field(default=None, description="kept in the audit record")


class PasswordResetResponse(BaseModel):
    user: UserRead
    temporary_password: str = Field(
        description="shown once: hand it to the user, who must set a new password at sign-in")


@router.post(
    "/{user_id}/unlock",
    summary="Lift every sign-in lock on the user (from every address) and restart the count",
    response_model=UserRead,
    responses=signed_in(404, 409),
)
async def unlock_user(user_id: UserId, admin: AdminUser, services: ServicesDep,
                      body: Annotated[SecurityActionRequest | None, Body()] = None) -> UserRead:
    user = await services.account_security.unlock(
        user_id, actor=admin.actor, reason=body.reason if body else None)
    return UserRead.model_validate(user)


@router.post(
    "/{user_id}/password-reset",
    summary="Force a password reset: a temporary password, every session ended, a new password "
            "due at the next sign-in",
    response_model=PasswordResetResponse,
    responses=signed_in(404, 409),
)
async def force_password_reset(
    user_id: UserId, admin: AdminUser, services: ServicesDep,
    body: Annotated[SecurityActionRequest | None, Body()] = None,
) -> PasswordResetResponse:
    reset = await services.account_security.force_password_reset(
        user_id, actor=admin.actor, reason=body.reason if body else None)
    return PasswordResetResponse(user=UserRead.model_validate(reset.user),
                                 temporary_password=reset.temporary_password)
