"""One MT5 account's unit events, from what is stored about it: the investments it carries, the
deposit deals the sync stored, its daily equity points and the ledger's payouts; no database.

Deposits. Each investment is paired with one deposit deal (a balance deal paid in) of exactly
its principal, in its currency, the one closest in time to its deposit date (then the lowest
ticket), investments taken oldest deposit first; a deal pairs with one investment at most. This
is the reconciliation's rule (`backend.services.reconciliation` calls `pair_deposits` too).

Subscriptions. A paired investment subscribes its principal on the day of its deposit deal
(UTC). When that day's stored equity point was recorded before the deal, that close did not
include the money, so the subscription counts from the next day: it buys at the close that did
not include it. An investment without a paired deal is awaiting its deposit: valued at cost
(principal less the principal already returned to the client; nothing once all of it was),
holding no units, left out of the value per unit.

Payouts. Every payout the ledger records for an investment holding units (interest,
performance share, principal returned) is money paid out of the account that backs it, so it
redeems units at the value per unit of the close before its day (`backend.money.units`); a
reversal of a payout puts the money back: it buys units on the reversal's day. A fund that pays
interest from elsewhere than the MT5 account must still book it here: the units redeemed are
then shared by the others, which is why payouts are to be paid from the backing account. The
payouts of one investment on one day are netted into one flow. A payout dated before the
investment's units were issued is taken on the day they were (nothing can leave the pool
before it came in).

What cannot be replayed is set aside, never guessed, and reported (`AccountBook.set_aside`):
a payout of an investment that holds no units (its deposit is not in the account) is not
redeemed; a payout above the investment's value then redeems every unit it holds (the fund paid
more than the units were worth); a subscription while the account is worth nothing (no value per
unit) is valued at cost, as if awaiting its deposit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from backend.errors import InvalidData
from backend.money.flows import FlowKind, LedgerFlow
from backend.money.units import (
    EquityPoint,
    Payout,
    Subscription,
    UnitEvent,
    UnitRegister,
    replay_units,
)

__all__ = [
    "AccountBook",
    "AccountClose",
    "AccountInvestment",
    "DepositDeal",
    "account_book",
    "pair_deposits",
]

ZERO = Decimal("0.00")
_PAYOUT_KINDS = frozenset({FlowKind.INTEREST_PAID, FlowKind.PERFORMANCE_SHARE_PAID,
                           FlowKind.PRINCIPAL_RETURNED})


@dataclass(frozen=True, slots=True)
class AccountInvestment:
    """An investment as the account's book needs it; `key` names it in the register."""

    key: str
    principal: Decimal
    currency: str
    deposit_date: datetime


@dataclass(frozen=True, slots=True)
class DepositDeal:
    """A balance deal paid into an account; `key` is unique among the deals paired together."""

    key: tuple[str, int]
    ticket: int
    time: datetime
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class AccountClose:
    """The account's stored equity point of a day, and when it was recorded."""

    on: date
    equity: Decimal
    recorded_at: datetime


def pair_deposits(investments: Sequence[AccountInvestment],
                  deposits: Sequence[DepositDeal]) -> dict[str, DepositDeal]:
    """Each investment's deposit deal, by the rule in the module docstring."""
    used: set[tuple[str, int]] = set()
    paired: dict[str, DepositDeal] = {}
    for investment in sorted(investments, key=lambda i: (i.deposit_date, i.key)):
        candidates = [d for d in deposits if d.key not in used and d.amount == investment.principal
                      and d.currency == investment.currency]
        if not candidates:
            continue
        day = investment.deposit_date
        chosen = min(candidates, key=lambda d: (abs(d.time - day), d.ticket))
        used.add(chosen.key)
        paired[investment.key] = chosen
    return paired


@dataclass(frozen=True, slots=True)
class AccountBook:
    """The account's register and how it was made."""

    register: UnitRegister
    #: Each investment's deposit deal, for those whose money is in the account.
    paired: dict[str, DepositDeal]
    #: The investments valued at cost: no deposit deal paired (or no price to buy at).
    awaiting_deposit: frozenset[str]
    #: The day each investment's units were issued.
    units_issued_on: dict[str, date]
    #: What could not be replayed as recorded, one sentence each.
    set_aside: tuple[str, ...] = field(default=())


def _subscription_day(deal: DepositDeal, closes: dict[date, AccountClose]) -> date:
    moment = deal.time.astimezone(UTC)
    day = moment.date()
    close = closes.get(day)
    if close is not None and close.recorded_at < moment:
        return day + timedelta(days=1)
    return day


def _principal_returned(flows: Iterable[LedgerFlow]) -> Decimal:
    return sum((f.net_amount for f in flows if f.counts_as is FlowKind.PRINCIPAL_RETURNED), ZERO)


def _net_payouts(flows: Iterable[LedgerFlow], *, not_before: date) -> dict[date, Decimal]:
    """Money out (positive) or back in (negative) per day, payouts and their reversals netted."""
    by_day: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for flow in flows:
        if flow.counts_as in _PAYOUT_KINDS:
            by_day[max(flow.on, not_before)] += flow.net_amount
    return {day: amount for day, amount in by_day.items() if amount != 0}


def _refused_event(events: list[UnitEvent], refused: InvalidData, investment_id: str,
                   on: date) -> int:
    """The position of the flow the register refused: a payout, unless no price was found
    (then the subscription of that day, if there is one)."""
    kinds: tuple[type, ...] = (Payout,)
    if refused.code == "NO_VALUE_PER_UNIT":
        kinds = (Subscription, Payout)
    for kind in kinds:
        for index, event in enumerate(events):
            if isinstance(event, EquityPoint) or not isinstance(event, kind):
                continue
            if event.investment_id == investment_id and event.on == on \
                    and not getattr(event, "awaiting_deposit", False):
                return index
    raise refused


def account_book(investments: Sequence[AccountInvestment], deposits: Sequence[DepositDeal],
                 closes: Sequence[AccountClose], flows: Sequence[LedgerFlow], *,
                 through: date | None = None) -> AccountBook:
    """Pair the deposits, lay out the events and replay them (the module docstring's rules)."""
    by_day = {close.on: close for close in closes}
    paired = pair_deposits(investments, deposits)
    flows_of: dict[str, list[LedgerFlow]] = defaultdict(list)
    for flow in flows:
        flows_of[flow.investment_id].append(flow)
    events: list[UnitEvent] = [EquityPoint(close.on, close.equity) for close in closes]
    issued_on: dict[str, date] = {}
    awaiting: set[str] = set()
    notes: list[str] = []
    for investment in investments:
        own = flows_of.get(investment.key, [])
        deal = paired.get(investment.key)
        if deal is None:
            awaiting.add(investment.key)
            at_cost = investment.principal - _principal_returned(own)
            if at_cost > 0:
                events.append(Subscription(investment.key, investment.deposit_date.date(), at_cost,
                                           awaiting_deposit=True))
            if any(f.counts_as in _PAYOUT_KINDS for f in own):
                notes.append(f"{investment.key}: payouts recorded while its deposit is not in "
                             "the account; valued at cost")
            continue
        day = _subscription_day(deal, by_day)
        issued_on[investment.key] = day
        events.append(Subscription(investment.key, day, investment.principal))
        for on, amount in sorted(_net_payouts(own, not_before=day).items()):
            events.append(Payout(investment.key, on, amount) if amount > 0
                          else Subscription(investment.key, on, -amount))
    register = _replay(events, through=through, awaiting=awaiting, notes=notes)
    return AccountBook(register=register, paired=paired, awaiting_deposit=frozenset(awaiting),
                       units_issued_on=issued_on, set_aside=tuple(notes))


def _replay(events: list[UnitEvent], *, through: date | None, awaiting: set[str],
            notes: list[str]) -> UnitRegister:
    """Replay, setting aside (and noting) each flow the register refuses, one at a time."""
    for _ in range(len(events) + 1):
        try:
            return replay_units(events, through=through)
        except InvalidData as refused:
            details = refused.details or {}
            investment_id, on = details.get("investment_id"), details.get("on")
            if not isinstance(investment_id, str) or not isinstance(on, str):
                raise
            day = date.fromisoformat(on)
            index = _refused_event(events, refused, investment_id, day)
            event = events[index]
            if refused.code == "PAYOUT_EXCEEDS_VALUE" and isinstance(event, Payout):
                value = Decimal(str(details["value"]))
                notes.append(f"{investment_id}: the payout of {event.amount} on {on} is more "
                             f"than its value of {value}; it redeems every unit held")
                if value > 0:
                    events[index] = replace(event, amount=value)
                else:
                    del events[index]
            elif refused.code == "NO_VALUE_PER_UNIT" and isinstance(event, Subscription):
                notes.append(f"{investment_id}: no value per unit on {on} to buy at; valued "
                             "at cost")
                events[index] = replace(event, awaiting_deposit=True)
                awaiting.add(investment_id)
            else:
                notes.append(f"{investment_id}: {refused.message}; not replayed")
                del events[index]
    raise AssertionError("every refused flow was set aside")  # pragma: no cover
