"""The performance share of a performance-share fund (UNLIMITED): what each payout date pays.

The rule, per investment, on each of its schedule's performance-share dates in order:

- the high-water mark starts at the value per unit the investment's units were bought at (an
  investment has one purchase: a top-up is an investment of its own);
- the value per unit is the one the payout moves at: the account's close before the payout date,
  as for every flow in `backend.money.units`; the units are those the investment holds then;
- above the mark, the gain is units x (value per unit - mark), and the client is paid the fund's
  share of it (50 % for UNLIMITED): gain x share / 100, computed exactly from the exact gain and
  rounded half-up to the cent once; the mark then rises to that value per unit;
- at or below the mark nothing is paid and the mark stays: the mark never falls, so a loss must
  be made good before anything is paid again;
- a share that rounds to 0.00 pays nothing and leaves the mark where it was, so the fraction of a
  cent is not lost: it counts again, with whatever follows, on the next date.

The gain shown beside the amount is the exact gain half-up to the cent, for reading only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal, localcontext

from backend.errors import InvalidData
from backend.funds import FundKind, FundTerms
from backend.money.schedule import PaymentSchedule, ScheduleItemKind, round_to_cent
from backend.money.units import UnitRegister

__all__ = [
    "PerformanceShare",
    "PerformanceShareValuation",
    "performance_share_on",
    "performance_shares",
    "valuation_for",
    "with_performance_shares",
]

_EXACT = Context(prec=80)
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class PerformanceShareValuation:
    """What a payout date's share is computed from."""

    due_date: date
    value_per_unit: Decimal
    units: Decimal


@dataclass(frozen=True, slots=True)
class PerformanceShare:
    """One payout date's outcome."""

    due_date: date
    value_per_unit: Decimal
    units: Decimal
    mark_before: Decimal
    mark_after: Decimal
    #: units x (value per unit - mark) to the cent; 0.00 at or below the mark.
    gain: Decimal
    #: What the client is paid.
    amount: Decimal


def _share_percent(terms: FundTerms) -> Decimal:
    if terms.kind is not FundKind.PERFORMANCE_SHARE or terms.performance_share_percent is None:
        raise InvalidData(f"fund {terms.code} pays no performance share",
                          code="NOT_A_PERFORMANCE_SHARE_FUND",
                          details={"fund_code": terms.code})
    return terms.performance_share_percent


def performance_share_on(valuation: PerformanceShareValuation, *, mark: Decimal,
                         share_percent: Decimal) -> PerformanceShare:
    """One payout date's share, by the module docstring's rule."""
    if valuation.value_per_unit <= mark:
        return PerformanceShare(due_date=valuation.due_date,
                                value_per_unit=valuation.value_per_unit, units=valuation.units,
                                mark_before=mark, mark_after=mark, gain=ZERO, amount=ZERO)
    with localcontext(_EXACT):
        gain = valuation.units * (valuation.value_per_unit - mark)
        amount = round_to_cent(gain * share_percent / 100)
        shown_gain = round_to_cent(gain)
    return PerformanceShare(
        due_date=valuation.due_date, value_per_unit=valuation.value_per_unit,
        units=valuation.units, mark_before=mark,
        mark_after=valuation.value_per_unit if amount > 0 else mark,
        gain=shown_gain, amount=amount)


def performance_shares(terms: FundTerms, *, purchase_value_per_unit: Decimal,
                       valuations: Sequence[PerformanceShareValuation],
                       ) -> tuple[PerformanceShare, ...]:
    """Every payout date's share in order, the mark carried from one to the next."""
    share_percent = _share_percent(terms)
    mark = purchase_value_per_unit
    outcomes: list[PerformanceShare] = []
    for valuation in sorted(valuations, key=lambda v: v.due_date):
        outcome = performance_share_on(valuation, mark=mark, share_percent=share_percent)
        outcomes.append(outcome)
        mark = outcome.mark_after
    return tuple(outcomes)


def valuation_for(register: UnitRegister, investment_id: str, *,
                  due_date: date) -> PerformanceShareValuation:
    """The valuation of a payout date from the account's register: the close before it and the
    units the investment held at that close."""
    return PerformanceShareValuation(
        due_date=due_date, value_per_unit=register.price_for_flows_on(due_date),
        units=register.units_on(investment_id, due_date - timedelta(days=1)))


def with_performance_shares(schedule: PaymentSchedule,
                            shares: Sequence[PerformanceShare]) -> PaymentSchedule:
    """The schedule with each performance-share item's amount set from the share of its date."""
    by_date = {share.due_date: share.amount for share in shares}
    items = tuple(
        dataclasses.replace(item, amount=by_date[item.due_date])
        if item.kind is ScheduleItemKind.PERFORMANCE_SHARE and item.due_date in by_date
        else item
        for item in schedule.items)
    return dataclasses.replace(schedule, items=items)
