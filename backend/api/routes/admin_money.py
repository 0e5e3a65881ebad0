"""Admin: what the funds owe and have paid: schedules, payouts, obligations and the ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from bson import ObjectId
from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel, Field

from backend.api.deps import (
    AdminUser,
    FundCodeQuery,
    ObjectIdPath,
    ObjectIdQuery,
    PageDep,
    ServicesDep,
    StaffUser,
)
from backend.api.schemas import PageOf, signed_in
from backend.api.statements import (
    STATEMENT_CONTENT,
    FormatQuery,
    PeriodDep,
    StatementFormat,
    statement_response,
)
from backend.errors import InvalidData
from backend.models._common import NotNull
from backend.models._types import NonNegativeMoney, SignedMoney
from backend.models.investments import IdempotencyKey, Units
from backend.models.ledger_entries import LedgerEntryRead
from backend.models.schedule_items import PayoutRequest, ScheduleItemRead, ScheduleRead
from backend.money.performance import as_percent
from backend.reports.statements import StatementRead, statement_read
from backend.services.fund_overview import FundOverview

router = APIRouter(prefix="/admin", tags=["admin: money"])

ItemNumber = Annotated[int, Path(ge=1, le=1000, description="the item's number in the schedule")]


class PayoutRead(BaseModel):
    item: ScheduleItemRead
    ledger_entry: LedgerEntryRead


class MonthObligationRead(BaseModel):
    month: str = Field(examples=["2026-12"])
    fund_code: str
    currency: str
    due: NonNegativeMoney
    scheduled: NonNegativeMoney
    items: int
    unpriced_items: int = Field(description="performance shares whose amount is not known yet")


class OverdueItemRead(ScheduleItemRead):
    investment_id: str
    investment_ref: str
    client_id: str
    fund_code: str


class ObligationsRead(BaseModel):
    overdue: list[OverdueItemRead]
    months: list[MonthObligationRead]
    total_due: NonNegativeMoney
    total_scheduled: NonNegativeMoney


@router.get(
    "/investments/{investment_id}/schedule",
    summary="An investment's payment schedule: items and totals (scheduled, due, paid)",
    response_model=ScheduleRead,
    responses=signed_in(404),
)
async def investment_schedule(investment_id: ObjectIdPath, staff: StaffUser,
                              services: ServicesDep) -> ScheduleRead:
    investment = await services.investments.get(investment_id)
    return await services.contracts.schedule_of(investment)


@router.post(
    "/investments/{investment_id}/schedule/{number}/payout",
    summary="Record the payment of a due schedule item, once (Idempotency-Key required)",
    status_code=status.HTTP_201_CREATED,
    response_model=PayoutRead,
    responses={200: {"model": PayoutRead,
                     "description": "Already paid under this Idempotency-Key: the first result"},
               **signed_in(404, 409)},
)
async def pay_schedule_item(
    investment_id: ObjectIdPath,
    number: ItemNumber,
    body: PayoutRequest,
    admin: AdminUser,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[
        IdempotencyKey | NotNull,
        Header(alias="Idempotency-Key",
               description="required: a retry with the same key answers the first payout"),
    ] = None,
) -> PayoutRead:
    if idempotency_key is None:
        raise InvalidData("a payout needs an Idempotency-Key header",
                          code="IDEMPOTENCY_KEY_REQUIRED")
    investment = await services.investments.get(investment_id)
    payout = await services.contracts.pay(
        investment, number, paid_on=body.paid_on, reference=body.reference,
        amount=body.amount, request_key=idempotency_key, actor=admin.actor)
    if not payout.created:
        response.status_code = status.HTTP_200_OK
    return PayoutRead(item=ScheduleItemRead.model_validate(payout.item),
                      ledger_entry=LedgerEntryRead.model_validate(payout.entry))


@router.get(
    "/obligations",
    summary="What the schedules owe: overdue items first, then due and scheduled amounts per "
            "month and fund",
    response_model=ObligationsRead,
    responses=signed_in(),
)
async def obligations(
    staff: StaffUser,
    services: ServicesDep,
    from_: Annotated[date | None, Query(alias="from", description="first day (inclusive)")] = None,
    to: Annotated[date | None, Query(description="last day (inclusive)")] = None,
    fund_code: FundCodeQuery = None,
) -> ObligationsRead:
    if from_ and to and to < from_:
        raise InvalidData("`to` is before `from`", code="INVALID_PERIOD")
    found = await services.contracts.obligations(from_day=from_, to_day=to, fund_code=fund_code)
    months = [MonthObligationRead(month=f"{m.month:%Y-%m}", fund_code=m.fund_code,
                                  currency=m.currency, due=m.due, scheduled=m.scheduled,
                                  items=m.items, unpriced_items=m.unpriced_items)
              for m in found.months]
    overdue = [OverdueItemRead.model_validate({
        **ScheduleItemRead.model_validate(item).model_dump(),
        "investment_id": str(item.investment_id), "investment_ref": item.investment_ref,
        "client_id": str(item.client_id), "fund_code": item.fund_code}) for item in found.overdue]
    return ObligationsRead(overdue=overdue, months=months,
                           total_due=sum((m.due for m in found.months), Decimal("0.00")),
                           total_scheduled=sum((m.scheduled for m in found.months),
                                               Decimal("0.00")))


@router.get(
    "/ledger",
    summary="Ledger entries, oldest first, by client and investment",
    response_model=PageOf[LedgerEntryRead],
    responses=signed_in(),
)
async def ledger(staff: StaffUser, services: ServicesDep, pagination: PageDep,
                 client_id: ObjectIdQuery = None,
                 investment_id: ObjectIdQuery = None) -> PageOf[LedgerEntryRead]:
    page = await services.contracts.ledger_page(
        client_id=ObjectId(client_id) if client_id else None,
        investment_id=ObjectId(investment_id) if investment_id else None,
        page=pagination.page, page_size=pagination.page_size)
    return PageOf[LedgerEntryRead].of(page, LedgerEntryRead.model_validate)


@router.get(
    "/clients/{client_id}/statement",
    summary="A client's statement for a period (period=2026-10, 2026-Q3 or 2026; or from and "
            "to), as JSON, CSV or PDF",
    response_model=StatementRead,
    responses={**STATEMENT_CONTENT, **signed_in(404, 422)},
)
async def client_statement(client_id: ObjectIdPath, staff: StaffUser, services: ServicesDep,
                           period: PeriodDep,
                           format: FormatQuery = StatementFormat.JSON) -> Response:
    statement = await services.statements.statement(ObjectId(client_id), period)
    return statement_response(statement_read(statement), format)


class AccountPoolRead(BaseModel):
    account_id: str
    equity: SignedMoney | None = Field(description="the last sync's equity; null if never")
    units_outstanding: Units
    value_per_unit: Units


class PayoutMonthRead(BaseModel):
    month: str = Field(examples=["2026-12"])
    amount: NonNegativeMoney
    items: int
    unpriced_items: int = Field(description="performance shares whose amount is not known yet")


class FundOverviewRead(BaseModel):
    fund_code: str
    currency: str
    investments: int = Field(description="investments whose money is in the fund")
    assets_under_management: NonNegativeMoney = Field(description="their principal")
    actual_equity: NonNegativeMoney = Field(description="latest equity of the fund's MT5 "
                                                        "accounts")
    accounts_synced: int
    accounts_never_synced: int
    actual_value: NonNegativeMoney = Field(description="the live investments' values by units "
                                                       "(at cost while a deposit is awaited)")
    awaiting_deposit: NonNegativeMoney
    units_outstanding: Units
    value_per_unit: Units | None = Field(description="the units' value over their number "
                                                     "(each account is a pool of its own)")
    obligations: SignedMoney = Field(description="principal owed + interest accrued to date "
                                                 "- interest paid")
    coverage_ratio: str | None = Field(description="actual equity / obligations; below 1 the "
                                                   "accounts hold less than is owed")
    overdue_amount: NonNegativeMoney
    overdue_items: int
    overdue: list[str]
    next_payouts: list[PayoutMonthRead] = Field(description="the next 12 months, by month")
    time_weighted_return: str | None = Field(description="since inception, a fraction")
    time_weighted_return_percent: str | None
    accounts: list[AccountPoolRead]


def _overview(overview: FundOverview) -> FundOverviewRead:
    rate = overview.time_weighted_return
    return FundOverviewRead(
        fund_code=overview.fund_code, currency=overview.currency,
        investments=overview.investments,
        assets_under_management=overview.assets_under_management,
        actual_equity=overview.actual_equity, accounts_synced=overview.accounts_synced,
        accounts_never_synced=overview.accounts_never_synced,
        actual_value=overview.actual_value, awaiting_deposit=overview.awaiting_deposit,
        units_outstanding=overview.units_outstanding, value_per_unit=overview.value_per_unit,
        obligations=overview.obligations,
        coverage_ratio=None if overview.coverage_ratio is None
        else format(overview.coverage_ratio, "f"),
        overdue_amount=overview.overdue_amount, overdue_items=overview.overdue_items,
        overdue=overview.overdue,
        next_payouts=[PayoutMonthRead(month=f"{m.month:%Y-%m}", amount=m.amount, items=m.items,
                                      unpriced_items=m.unpriced_items)
                      for m in overview.next_payouts],
        time_weighted_return=None if rate is None else format(rate, "f"),
        time_weighted_return_percent=None if rate is None else format(as_percent(rate), "f"),
        accounts=[AccountPoolRead(account_id=a.account_id, equity=a.equity,
                                  units_outstanding=a.units_outstanding,
                                  value_per_unit=a.value_per_unit)
                  for a in overview.accounts])


@router.get(
    "/funds/overview",
    summary="Per fund: assets under management, MT5 equity, units and value per unit, "
            "obligations and coverage, the next 12 months of payouts, TWR since inception",
    response_model=list[FundOverviewRead],
    responses=signed_in(),
)
async def funds_overview(staff: StaffUser, services: ServicesDep) -> list[FundOverviewRead]:
    return [_overview(overview) for overview in await services.fund_overview.overview()]
