"""A client's money movements as valuation and statements read them: one `LedgerFlow` per ledger
entry, which the persistence layer maps its entries onto.

- Every amount is positive and in whole cents; the kind says which way the money went.
- A reversal undoes an entry of another kind (`reverses`; never another reversal) on the
  reversal's own date: it counts as that kind with the amount negated, so totals are net.
- A payout may name the schedule item it pays (`schedule_item`, the item's number); a reversal
  of that payout names it too, and the item counts as paid while more payments than reversals
  name it.
- From the client's side (for money-weighted returns) a subscription is money paid in
  (negative); interest, a performance share and principal returned are money received
  (positive).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from backend.errors import InvalidData
from backend.funds import CENT
from backend.money.performance import CashFlow

__all__ = [
    "FlowKind",
    "FlowTotals",
    "LedgerFlow",
    "flow_totals",
    "paid_schedule_items",
]

ZERO = Decimal("0.00")


class FlowKind(StrEnum):
    SUBSCRIPTION = "subscription"
    INTEREST_PAID = "interest_paid"
    PERFORMANCE_SHARE_PAID = "performance_share_paid"
    PRINCIPAL_RETURNED = "principal_returned"
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True)
class LedgerFlow:
    investment_id: str
    kind: FlowKind
    on: date
    amount: Decimal
    #: For a reversal: the kind of the entry it undoes.
    reverses: FlowKind | None = None
    #: The number of the schedule item a payout (or its reversal) is for, if any.
    schedule_item: int | None = None

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount <= 0:
            raise InvalidData(f"a ledger flow of {self.amount} is not a positive amount",
                              code="AMOUNT_NOT_POSITIVE", details={"amount": str(self.amount)})
        if self.amount != self.amount.quantize(CENT):
            raise InvalidData(f"a ledger flow of {self.amount} has more than two decimal places",
                              code="AMOUNT_PRECISION", details={"amount": str(self.amount)})
        if (self.kind is FlowKind.REVERSAL) != (self.reverses is not None) \
                or self.reverses is FlowKind.REVERSAL:
            raise InvalidData("a reversal, and only a reversal, names the kind of entry it "
                              "undoes, which is not a reversal", code="REVERSAL_INVALID",
                              details={"kind": self.kind.value, "reverses": self.reverses})

    @property
    def counts_as(self) -> FlowKind:
        """The kind whose total this flow moves."""
        return self.reverses if self.reverses is not None else self.kind

    @property
    def net_amount(self) -> Decimal:
        """The amount as it moves that total: negated for a reversal."""
        return -self.amount if self.kind is FlowKind.REVERSAL else self.amount

    def cash_flow(self) -> CashFlow:
        """The flow from the client's side: paid in negative, received positive."""
        paid_in = self.counts_as is FlowKind.SUBSCRIPTION
        return CashFlow(on=self.on, amount=-self.net_amount if paid_in else self.net_amount)


@dataclass(frozen=True, slots=True)
class FlowTotals:
    """Net totals of flows, by kind (reversals netted)."""

    subscriptions: Decimal
    interest_paid: Decimal
    performance_share_paid: Decimal
    principal_returned: Decimal

    @property
    def payouts(self) -> Decimal:
        """Interest and performance share paid: what the client earned and received."""
        return self.interest_paid + self.performance_share_paid


def flow_totals(flows: Iterable[LedgerFlow], *, after: date | None = None,
                through: date | None = None) -> FlowTotals:
    """The net totals of the flows dated after `after` (if given) and on or before `through`
    (if given)."""
    sums = dict.fromkeys(FlowKind, ZERO)
    for flow in flows:
        if (after is not None and flow.on <= after) or (through is not None and flow.on > through):
            continue
        sums[flow.counts_as] += flow.net_amount
    return FlowTotals(subscriptions=sums[FlowKind.SUBSCRIPTION],
                      interest_paid=sums[FlowKind.INTEREST_PAID],
                      performance_share_paid=sums[FlowKind.PERFORMANCE_SHARE_PAID],
                      principal_returned=sums[FlowKind.PRINCIPAL_RETURNED])


def paid_schedule_items(flows: Iterable[LedgerFlow], *,
                        through: date | None = None) -> frozenset[int]:
    """The numbers of the schedule items paid (more payments than reversals name them) by the
    close of `through` (if given)."""
    count: dict[int, int] = {}
    for flow in flows:
        if flow.schedule_item is None or (through is not None and flow.on > through):
            continue
        if flow.counts_as is FlowKind.SUBSCRIPTION:
            continue
        count[flow.schedule_item] = count.get(flow.schedule_item, 0) + (
            -1 if flow.kind is FlowKind.REVERSAL else 1)
    return frozenset(number for number, times in count.items() if times > 0)
