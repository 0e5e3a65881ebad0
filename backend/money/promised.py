"""Promised versus actual: what an investment's contract says it is worth beside what its units
are worth.

Contractual value of an investment at the close of a day, from its schedule and its ledger
flows up to that close:

    subscriptions - principal returned                    (principal still owed)
    + interest accrued (the schedule's `interest_accrued_on`: incubation honoured, the running
      period pro rata)
    + performance shares fixed (the amounts of performance-share items due by then; an item's
      amount is known from its date on)
    - interest and performance shares paid

so it is what the fund owes the client that day. Each part is in cents already, so the sum is
exact. Everything "earned" (interest accrued and performance shares fixed) is what
`earned_on` gives.

The gap is actual - contractual (negative: the units are worth less than promised); in percent,
gap / contractual x 100, half-up to two places, None when nothing is owed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from backend.money.flows import LedgerFlow, flow_totals
from backend.money.schedule import PaymentSchedule, ScheduleItemKind, interest_accrued_on

__all__ = [
    "PromisedVersusActual",
    "contractual_value_on",
    "earned_on",
    "promised_versus_actual",
]

ZERO = Decimal("0.00")
_PERCENT = Decimal("0.01")


def earned_on(schedule: PaymentSchedule, day: date) -> Decimal:
    """Interest accrued by the close of `day`, plus the performance shares fixed by then."""
    shares = sum((item.amount for item in schedule.items
                  if item.kind is ScheduleItemKind.PERFORMANCE_SHARE and item.amount is not None
                  and item.due_date <= day), ZERO)
    return interest_accrued_on(schedule, day) + shares


def contractual_value_on(schedule: PaymentSchedule, flows: Iterable[LedgerFlow], *,
                         on: date) -> Decimal:
    """The investment's contractual value at the close of `on` (flows: the investment's own)."""
    totals = flow_totals(flows, through=on)
    return (totals.subscriptions - totals.principal_returned + earned_on(schedule, on)
            - totals.payouts)


@dataclass(frozen=True, slots=True)
class PromisedVersusActual:
    on: date
    contractual_value: Decimal
    actual_value: Decimal
    gap: Decimal
    gap_percent: Decimal | None

    @classmethod
    def of(cls, *, on: date, contractual_value: Decimal,
           actual_value: Decimal) -> PromisedVersusActual:
        gap = actual_value - contractual_value
        percent = (None if contractual_value == 0 else
                   (gap * 100 / contractual_value).quantize(_PERCENT, rounding=ROUND_HALF_UP))
        return cls(on=on, contractual_value=contractual_value, actual_value=actual_value,
                   gap=gap, gap_percent=percent)

    @classmethod
    def total(cls, parts: Iterable[PromisedVersusActual], *, on: date) -> PromisedVersusActual:
        """Several investments' (a fund's, a client's) together, on one day."""
        listed = list(parts)
        if any(part.on != on for part in listed):
            raise ValueError("a total adds up figures of one day only")
        return cls.of(on=on, contractual_value=sum((p.contractual_value for p in listed), ZERO),
                      actual_value=sum((p.actual_value for p in listed), ZERO))


def promised_versus_actual(schedule: PaymentSchedule, flows: Iterable[LedgerFlow], *,
                           actual_value: Decimal, on: date) -> PromisedVersusActual:
    """The investment's contractual value at the close of `on` beside its actual value."""
    return PromisedVersusActual.of(
        on=on, contractual_value=contractual_value_on(schedule, flows, on=on),
        actual_value=actual_value)
