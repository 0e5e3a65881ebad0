"""The fund catalog, for any signed-in user."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import CurrentUser, ServicesDep
from backend.api.schemas import FundRead, error_responses

router = APIRouter(tags=["funds"])


@router.get(
    "/funds",
    summary="The funds with their minimum subscription",
    response_model=list[FundRead],
    responses=error_responses(401),
)
async def list_funds(user: CurrentUser, services: ServicesDep) -> list[FundRead]:
    return [FundRead.model_validate(fund) for fund in services.funds.all()]
