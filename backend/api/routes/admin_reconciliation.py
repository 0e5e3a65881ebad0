"""Admin: reconciliation breaks between MT5 balance deals and recorded investments.

Included under `/api/v1` like the other routers, so the route is
`GET /api/v1/admin/reconciliation/breaks`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from bson import ObjectId
from fastapi import APIRouter, Query
from pydantic import BaseModel

from backend.api.deps import AdminUser, ServicesDep
from backend.api.schemas import signed_in
from backend.models._types import SignedMoney
from backend.services.reconciliation import BreakKind, ReconciliationService

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
    client_id: Annotated[str | None, Query(pattern="^[0-9a-f]{24}$")] = None,
    fund_code: Annotated[str | None, Query(pattern="^[A-Z][A-Z0-9_]{1,15}$")] = None,
) -> ReconciliationReport:
    found = await ReconciliationService(services.db).breaks(
        client_id=ObjectId(client_id) if client_id else None, fund_code=fund_code)
    items = [ReconciliationBreakRead.model_validate(b, from_attributes=True) for b in found]
    return ReconciliationReport(breaks=items, total=len(items))
