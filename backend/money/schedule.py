"""The payout schedule of one investment: what the fund owes, when, to the cent.

Dates (each from the deposit date by `add_months`, never chained, never from day counts):

- incubation ends at deposit + incubation months;
- payout k (k = 1, 2, ...) falls at deposit + incubation + k x period months, while that is no
  later than maturity;
- maturity is deposit + incubation + commitment months; the principal is returned at maturity,
  as its own item after the last payout.

Amounts:

- a fixed-interest payout is principal x monthly rate / 100 x months in the period, computed
  exactly and then rounded half-up (ROUND_HALF_UP) to the cent, once per payout. Every payout
  of one investment is therefore the same amount, and the total interest is
  payouts x that rounded amount, which may differ from the unrounded
  principal x rate / 100 x commitment by at most half a cent per payout;
- a performance-share payout has its date but no amount: the amount is known only on its date,
  from the investment's value, which valuation computes;
- the principal item carries the principal.

Items are numbered 1..n in date order, the principal last. On a given day an item is
`scheduled` before its due date and `due` from it (being paid is a fact the ledger records, not
a date rule). An investment whose deposit is confirmed is `incubating` before its incubation
end, `active` from it until maturity, and `matured` from maturity.

Interest accrued to a day (the contractual value's interest part, for valuation): the sum of
the interest payouts whose due date has come, plus the running period's share of its coming
payout, in proportion of the days elapsed in that period (from the previous payout date, or
incubation end, to the coming payout date), rounded half-up to the cent. Nothing accrues
during incubation; from maturity the whole interest has accrued. Day counts appear only in this
pro-rata share, never in a contract date. A performance-share investment accrues no fixed
interest (0.00): its value comes from valuation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from enum import StrEnum

from backend.errors import InvalidData
from backend.funds import CENT, FundKind, FundTerms
from backend.models.schedule_items import ScheduleItemKind
from backend.money.calendar import add_months

__all__ = [
    "ContractDates",
    "ItemStatus",
    "LifecycleState",
    "PaymentSchedule",
    "ScheduleItem",
    "ScheduleItemKind",
    "build_schedule",
    "contract_dates",
    "interest_accrued_on",
    "item_status_on",
    "lifecycle_state_on",
    "payout_amount",
    "promised_interest_total",
    "round_to_cent",
]

ZERO = Decimal("0.00")
# Wide enough for any principal times any rate times any period, so the products are exact;
# Inexact is trapped so a figure that would not be exact fails loudly instead of rounding.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


class ItemStatus(StrEnum):
    SCHEDULED = "scheduled"
    DUE = "due"


class LifecycleState(StrEnum):
    INCUBATING = "incubating"
    ACTIVE = "active"
    MATURED = "matured"


@dataclass(frozen=True, slots=True)
class ContractDates:
    deposit_date: date
    incubation_end_date: date
    maturity_date: date
    #: The payout dates in order; the last one is the maturity date.
    payout_dates: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    number: int
    kind: ScheduleItemKind
    due_date: date
    #: None for a performance share, whose amount is known only on its date.
    amount: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class PaymentSchedule:
    fund_code: str
    terms_version: int
    currency: str
    principal: Decimal
    dates: ContractDates
    #: Payouts in date order, then the principal; numbered from 1.
    items: tuple[ScheduleItem, ...]

    @property
    def deposit_date(self) -> date:
        return self.dates.deposit_date

    @property
    def incubation_end_date(self) -> date:
        return self.dates.incubation_end_date

    @property
    def maturity_date(self) -> date:
        return self.dates.maturity_date

    @property
    def payouts(self) -> tuple[ScheduleItem, ...]:
        """Every item but the principal's return."""
        return tuple(item for item in self.items if item.kind is not ScheduleItemKind.PRINCIPAL)

    @property
    def total_interest(self) -> Decimal:
        """The fixed interest the schedule promises (0.00 for a performance share)."""
        return sum((item.amount for item in self.items
                    if item.kind is ScheduleItemKind.INTEREST and item.amount is not None), ZERO)


def round_to_cent(amount: Decimal) -> Decimal:
    """Half-up to the cent: 150.045 -> 150.05, 150.00015 -> 150.00."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def contract_dates(terms: FundTerms, deposit_date: date) -> ContractDates:
    start = terms.incubation_months
    maturity = add_months(deposit_date, start + terms.commitment_months)
    payout_dates: list[date] = []
    k = 1
    while (due := add_months(deposit_date, start + k * terms.payout_period_months)) <= maturity:
        payout_dates.append(due)
        k += 1
    return ContractDates(
        deposit_date=deposit_date,
        incubation_end_date=add_months(deposit_date, start),
        maturity_date=maturity,
        payout_dates=tuple(payout_dates),
    )


def payout_amount(terms: FundTerms, principal: Decimal) -> Decimal | None:
    """One fixed-interest payout, rounded half-up to the cent; None for a performance share."""
    if terms.kind is not FundKind.FIXED_INTEREST or terms.monthly_rate_percent is None:
        return None
    with localcontext(_EXACT):
        exact = principal * terms.monthly_rate_percent * terms.payout_period_months / 100
    return round_to_cent(exact)


def promised_interest_total(terms: FundTerms, principal: Decimal) -> Decimal:
    """The closed form of the schedule's total interest: payouts x one rounded payout."""
    amount = payout_amount(terms, principal)
    return ZERO if amount is None else amount * terms.payouts_count


def build_schedule(terms: FundTerms, *, principal: Decimal, deposit_date: date) -> PaymentSchedule:
    """The schedule of `principal` deposited on `deposit_date` under `terms` (the version the
    caller found in force on that date)."""
    if not principal.is_finite() or principal <= 0:
        raise InvalidData(f"the principal {principal} is not a positive amount",
                          code="AMOUNT_NOT_POSITIVE", details={"amount": str(principal)})
    if principal != principal.quantize(CENT):
        raise InvalidData(f"amounts in {terms.currency} have at most two decimal places",
                          code="AMOUNT_PRECISION", details={"amount": str(principal)})
    dates = contract_dates(terms, deposit_date)
    amount = payout_amount(terms, principal)
    kind = (ScheduleItemKind.INTEREST if terms.kind is FundKind.FIXED_INTEREST
            else ScheduleItemKind.PERFORMANCE_SHARE)
    items = [ScheduleItem(number=number, kind=kind, due_date=due, amount=amount,
                          currency=terms.currency)
             for number, due in enumerate(dates.payout_dates, start=1)]
    items.append(ScheduleItem(number=len(items) + 1, kind=ScheduleItemKind.PRINCIPAL,
                              due_date=dates.maturity_date, amount=principal,
                              currency=terms.currency))
    return PaymentSchedule(fund_code=terms.code, terms_version=terms.terms_version,
                           currency=terms.currency, principal=principal, dates=dates,
                           items=tuple(items))


def lifecycle_state_on(dates: ContractDates, day: date) -> LifecycleState:
    """The state a confirmed investment's dates give on `day` (not before its deposit)."""
    if day < dates.deposit_date:
        raise ValueError(f"{day.isoformat()} is before the deposit date "
                         f"{dates.deposit_date.isoformat()}")
    if day < dates.incubation_end_date:
        return LifecycleState.INCUBATING
    if day < dates.maturity_date:
        return LifecycleState.ACTIVE
    return LifecycleState.MATURED


def item_status_on(item: ScheduleItem, day: date) -> ItemStatus:
    """`scheduled` before the item's due date, `due` on and after it (until paid)."""
    return ItemStatus.SCHEDULED if day < item.due_date else ItemStatus.DUE


def interest_accrued_on(schedule: PaymentSchedule, day: date) -> Decimal:
    """The fixed interest accrued by the end of `day`, by the rule in the module docstring."""
    accrued = ZERO
    period_start = schedule.incubation_end_date
    for item in schedule.items:
        if item.kind is not ScheduleItemKind.INTEREST or item.amount is None:
            continue
        if item.due_date <= day:
            accrued += item.amount
            period_start = item.due_date
            continue
        if day > period_start:
            elapsed = (day - period_start).days
            length = (item.due_date - period_start).days
            accrued += round_to_cent(item.amount * elapsed / length)
        break
    return accrued
