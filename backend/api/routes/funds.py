"""The fund catalog, for any signed-in user."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import CurrentUser, ServicesDep
from backend.api.schemas import FundRead, error_responses

router = APIRouter(tags=["funds"])


@router.get(
    "/funds",
    summary="The funds with their terms in force today: minimum, rate, payout period, "
            "incubation, commitment, terms version",
    response_model=list[FundRead],
    responses=error_responses(401),
)
async def list_funds(user: CurrentUser, services: ServicesDep) -> list[FundRead]:
    today = services.clock().date()
    return [FundRead.model_validate(fund) for fund in services.funds.all(on=today)]
