"""The figures of a client's statement for a period, from the client's investments (schedules
and actual values) and ledger flows; no database, no format.

The period runs from the close of the day before `start` (the opening) to the close of `end`
(the closing); a flow belongs to it when dated from `start` to `end`, both included. Per
investment, and for the client as the sum of the investments:

- opening and closing contractual balance: `promised.contractual_value_on` at the opening and
  at the closing;
- subscriptions, payouts (interest and performance share paid, each also shown), principal
  returned: the net totals of the period's flows (reversals netted on their own date);
- interest accrued: what was earned in the period, `promised.earned_on` at the closing less at
  the opening (interest accrued pro rata, and performance shares fixed on their date);
- so, to the cent, for every investment and for the total:
  opening + subscriptions - payouts - principal returned + interest accrued = closing
  (each term is in cents, and each is the change of one part of the contractual value);
- interest accrued but unpaid: at the closing, what was earned less what was paid;
- actual value at the opening and at the closing: the investment's value series at those
  closes (the last value on or before; 0.00 before the first);
- time-weighted return for the period: `performance.portfolio_time_weighted_return` of the
  values and the flows (the client's: of the investments' values added up);
- money-weighted return for the period, annual as XIRR gives it: the opening actual value as
  paid in at the opening, the period's flows, the closing actual value as received at the
  closing;
- the next payouts: every schedule item due after `end` and up to `horizon_months` calendar
  months after it, not already paid, in date order (a performance share's amount is None
  until its date); and the overdue ones: due by `end` and not paid by then.

Every investment of a statement is in one currency; flows must belong to its investments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from backend.errors import InvalidData
from backend.money.calendar import add_months
from backend.money.flows import LedgerFlow, flow_totals, paid_schedule_items
from backend.money.performance import (
    CashFlow,
    ValuePoint,
    combine_value_series,
    money_weighted_return,
    portfolio_time_weighted_return,
    value_on,
)
from backend.money.promised import contractual_value_on, earned_on
from backend.money.schedule import PaymentSchedule, ScheduleItemKind

__all__ = [
    "StatementFigures",
    "StatementInvestment",
    "StatementLine",
    "UpcomingPayout",
    "statement_figures",
]

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class StatementInvestment:
    """One investment as a statement needs it."""

    investment_id: str
    fund_code: str
    #: With the amounts of the performance shares known so far filled in.
    schedule: PaymentSchedule
    #: The actual value at closes, in date order (`UnitRegister.value_series`).
    values: tuple[ValuePoint, ...]


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One investment's figures, or (investment_id None) the client's total."""

    investment_id: str | None
    opening_contractual_balance: Decimal
    subscriptions: Decimal
    payouts: Decimal
    interest_paid: Decimal
    performance_share_paid: Decimal
    principal_returned: Decimal
    interest_accrued: Decimal
    closing_contractual_balance: Decimal
    interest_accrued_unpaid: Decimal
    opening_actual_value: Decimal
    closing_actual_value: Decimal
    time_weighted_return: Decimal | None
    money_weighted_return: Decimal | None

    @property
    def reconciles(self) -> bool:
        """opening + subscriptions - payouts - principal returned + interest accrued = closing."""
        return (self.opening_contractual_balance + self.subscriptions - self.payouts
                - self.principal_returned + self.interest_accrued
                == self.closing_contractual_balance)


@dataclass(frozen=True, slots=True)
class UpcomingPayout:
    investment_id: str
    fund_code: str
    number: int
    kind: ScheduleItemKind
    due_date: date
    #: None for a performance share whose amount is not known yet.
    amount: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class StatementFigures:
    start: date
    end: date
    #: None for a statement without investments.
    currency: str | None
    total: StatementLine
    investments: tuple[StatementLine, ...]
    next_payouts: tuple[UpcomingPayout, ...]
    overdue_payouts: tuple[UpcomingPayout, ...]


def _line(investment_id: str | None, *, schedules: Sequence[PaymentSchedule],
          values: Sequence[ValuePoint], flows: Sequence[LedgerFlow],
          opening: date, end: date, per_schedule_flows: Sequence[Sequence[LedgerFlow]],
          ) -> StatementLine:
    in_period = flow_totals(flows, after=opening, through=end)
    paid_by_end = flow_totals(flows, through=end)
    opening_balance = sum((contractual_value_on(s, f, on=opening)
                           for s, f in zip(schedules, per_schedule_flows, strict=True)), ZERO)
    closing_balance = sum((contractual_value_on(s, f, on=end)
                           for s, f in zip(schedules, per_schedule_flows, strict=True)), ZERO)
    earned_at_opening = sum((earned_on(s, opening) for s in schedules), ZERO)
    earned_at_end = sum((earned_on(s, end) for s in schedules), ZERO)
    opening_value = value_on(values, opening) or ZERO
    closing_value = value_on(values, end) or ZERO
    period_flows = [flow.cash_flow() for flow in flows if opening < flow.on <= end]
    money_in_at_opening = [CashFlow(on=opening, amount=-opening_value)] if opening_value else []
    return StatementLine(
        investment_id=investment_id,
        opening_contractual_balance=opening_balance,
        subscriptions=in_period.subscriptions,
        payouts=in_period.payouts,
        interest_paid=in_period.interest_paid,
        performance_share_paid=in_period.performance_share_paid,
        principal_returned=in_period.principal_returned,
        interest_accrued=earned_at_end - earned_at_opening,
        closing_contractual_balance=closing_balance,
        interest_accrued_unpaid=earned_at_end - paid_by_end.payouts,
        opening_actual_value=opening_value,
        closing_actual_value=closing_value,
        time_weighted_return=portfolio_time_weighted_return(
            values, [flow.cash_flow() for flow in flows], start=opening, end=end),
        money_weighted_return=money_weighted_return(
            [*money_in_at_opening, *period_flows], value=closing_value, on=end),
    )


def _payouts(investment: StatementInvestment, flows: Sequence[LedgerFlow], *,
             end: date, horizon_months: int) -> tuple[list[UpcomingPayout], list[UpcomingPayout]]:
    paid = paid_schedule_items(flows, through=end)
    horizon = add_months(end, horizon_months)
    upcoming: list[UpcomingPayout] = []
    overdue: list[UpcomingPayout] = []
    for item in investment.schedule.items:
        if item.number in paid or item.due_date > horizon:
            continue
        payout = UpcomingPayout(investment_id=investment.investment_id,
                                fund_code=investment.fund_code, number=item.number,
                                kind=item.kind, due_date=item.due_date, amount=item.amount,
                                currency=item.currency)
        (upcoming if item.due_date > end else overdue).append(payout)
    return upcoming, overdue


def _order(payout: UpcomingPayout) -> tuple[date, str, int]:
    return payout.due_date, payout.investment_id, payout.number


def statement_figures(investments: Iterable[StatementInvestment], flows: Iterable[LedgerFlow],
                      *, start: date, end: date, horizon_months: int = 12) -> StatementFigures:
    """The statement's figures for the period from `start` to `end`, both included."""
    listed = list(investments)
    if end < start:
        raise InvalidData(f"the period ends ({end.isoformat()}) before it starts "
                          f"({start.isoformat()})", code="PERIOD_INVALID",
                          details={"start": start.isoformat(), "end": end.isoformat()})
    currencies = {investment.schedule.currency for investment in listed}
    if len(currencies) > 1:
        raise InvalidData("a statement adds up investments of one currency only",
                          code="CURRENCY_MISMATCH", details={"currencies": sorted(currencies)})
    by_investment: dict[str, list[LedgerFlow]] = {i.investment_id: [] for i in listed}
    every_flow = list(flows)
    for flow in every_flow:
        if flow.investment_id not in by_investment:
            raise InvalidData(f"a ledger flow of {flow.investment_id} is not one of the "
                              "statement's investments", code="UNKNOWN_INVESTMENT",
                              details={"investment_id": flow.investment_id})
        by_investment[flow.investment_id].append(flow)
    opening = start - timedelta(days=1)
    lines = tuple(
        _line(investment.investment_id, schedules=[investment.schedule],
              values=investment.values, flows=by_investment[investment.investment_id],
              opening=opening, end=end,
              per_schedule_flows=[by_investment[investment.investment_id]])
        for investment in listed)
    total = _line(None, schedules=[i.schedule for i in listed],
                  values=combine_value_series(i.values for i in listed), flows=every_flow,
                  opening=opening, end=end,
                  per_schedule_flows=[by_investment[i.investment_id] for i in listed])
    upcoming: list[UpcomingPayout] = []
    overdue: list[UpcomingPayout] = []
    for investment in listed:
        coming, late = _payouts(investment, by_investment[investment.investment_id], end=end,
                                horizon_months=horizon_months)
        upcoming.extend(coming)
        overdue.extend(late)
    return StatementFigures(
        start=start, end=end, currency=currencies.pop() if currencies else None,
        total=total, investments=lines,
        next_payouts=tuple(sorted(upcoming, key=_order)),
        overdue_payouts=tuple(sorted(overdue, key=_order)))
