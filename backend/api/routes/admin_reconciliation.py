"""Admin: reconciliation breaks between MT5 balance deals and recorded investments.

Included under `/api/v1` like the other routers, so the route is
`GET /api/v1/admin/reconciliation/breaks`.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from fastapi import APIRouter
from pydantic import BaseModel

from backend.api.deps import AdminUser, FundCodeQuery, ObjectIdQuery, ServicesDep
from backend.api.schemas import signed_in
from backend.models._types import SignedMoney
from backend.services.reconciliation import BreakKind

router = APIRouter(prefix="/admin/reconciliation", tags=["admin: reconciliation"])


class ReconciliationBreakRead(BaseModel):
    kind: BreakKind
    client_id: str
    client_name: str | None
    fund_code: str
    account_id: str | None
    mt5_login: int | None
    amount: SignedMoney
    currency: str
    deal_tickets: list[int]
    deal_time: datetime | None
    investment_id: str | None
    deposit_date: datetime | None
    message: str


class ReconciliationReport(BaseModel):
    breaks: list[ReconciliationBreakRead]
    total: int


@router.get(
    "/breaks",
    summary="MT5 deposits and withdrawals that no investment records, and investments with no "
            "MT5 deposit; amounts compared exactly",
    response_model=ReconciliationReport,
    responses=signed_in(),
)
async def list_breaks(
    admin: AdminUser,
    services: ServicesDep,
    client_id: ObjectIdQuery = None,
    fund_code: FundCodeQuery = None,
) -> ReconciliationReport:
    found = await services.reconciliation.breaks(
        client_id=ObjectId(client_id) if client_id else None, fund_code=fund_code)
    items = [ReconciliationBreakRead.model_validate(b, from_attributes=True) for b in found]
    return ReconciliationReport(breaks=items, total=len(items))
