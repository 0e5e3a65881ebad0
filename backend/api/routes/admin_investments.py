"""Admin: investments, created under the fund rules with an Idempotency-Key, and their status."""

from __future__ import annotations

from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Body, Header, Query, Response, status

from backend.api.deps import (
    AdminUser,
    FundCodeQuery,
    ObjectIdPath,
    ObjectIdQuery,
    PageDep,
    ServicesDep,
    StaffUser,
)
from backend.api.schemas import InvestmentListItem, PageOf, signed_in
from backend.models._common import NotNull
from backend.models.investments import (
    IdempotencyKey,
    InvestmentCreate,
    InvestmentRead,
    InvestmentStatus,
    InvestmentStatusUpdate,
)

router = APIRouter(prefix="/admin/investments", tags=["admin: investments"])

InvestmentKey = ObjectIdPath

_CREATE_EXAMPLES: dict[str, Any] = {
    "core": {"summary": "At the CORE fund's minimum", "value": {
        "client_id": "665f1c2ab8e4a1d2c3b4a5f6", "fund_code": "CORE",
        "principal_amount": "10000.00", "currency": "USD", "deposit_date": "2026-11-02"}},
}


@router.get(
    "",
    summary="Investments with their clients' names, filtered by client, fund and status; "
            "newest first",
    response_model=PageOf[InvestmentListItem],
    responses=signed_in(),
)
async def list_investments(
    staff: StaffUser,
    services: ServicesDep,
    pagination: PageDep,
    client_id: ObjectIdQuery = None,
    fund_code: FundCodeQuery = None,
    investment_status: Annotated[InvestmentStatus | None, Query(alias="status")] = None,
) -> PageOf[InvestmentListItem]:
    rows, total = await services.investments.list_with_client_names(
        client_id=ObjectId(client_id) if client_id else None, fund_code=fund_code,
        status=investment_status, page=pagination.page, page_size=pagination.page_size)
    items = [
        InvestmentListItem.model_validate(
            {**InvestmentRead.model_validate(row.investment).model_dump(),
             "client_name": row.client_name})
        for row in rows
    ]
    return PageOf[InvestmentListItem](items=items, total=total, page=pagination.page,
                                      page_size=pagination.page_size)


@router.post(
    "",
    summary="Record an investment; the same Idempotency-Key returns the first one (200)",
    status_code=status.HTTP_201_CREATED,
    response_model=InvestmentRead,
    responses={
        200: {"model": InvestmentRead,
              "description": "Already recorded under this Idempotency-Key: the first one"},
        **signed_in(409),
    },
)
async def create_investment(
    admin: AdminUser,
    services: ServicesDep,
    response: Response,
    body: Annotated[InvestmentCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    idempotency_key: Annotated[
        IdempotencyKey | NotNull,
        Header(alias="Idempotency-Key",
               description="a key of the caller's choosing (8-128 of A-Z a-z 0-9 . _ : -); "
                           "a retry with the same key cannot record the investment twice"),
    ] = None,
) -> InvestmentRead:
    result = await services.investments.create(body, actor=admin.actor,
                                               idempotency_key=idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return InvestmentRead.model_validate(result.investment)


@router.get(
    "/{investment_id}",
    summary="One investment",
    response_model=InvestmentRead,
    responses=signed_in(404),
)
async def get_investment(investment_id: InvestmentKey, staff: StaffUser,
                         services: ServicesDep) -> InvestmentRead:
    return InvestmentRead.model_validate(await services.investments.get(investment_id))


@router.post(
    "/{investment_id}/status",
    summary="Confirm a pending investment's deposit (status incubating; it then takes the "
            "state its dates give) or cancel one entered by mistake (with a reason)",
    response_model=InvestmentRead,
    responses=signed_in(404, 409),
)
async def set_investment_status(investment_id: InvestmentKey, body: InvestmentStatusUpdate,
                                admin: AdminUser, services: ServicesDep) -> InvestmentRead:
    return InvestmentRead.model_validate(await services.investments.set_status(
        investment_id, body.status, actor=admin.actor, reason=body.reason,
        expected_version=body.version, deposit_date=body.deposit_date))
