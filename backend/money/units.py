"""Unit accounting: how one MT5 account's equity is shared by the investments it backs.

The account is a pool divided into units, as a fund's shares are. Each investment holds units;
the pool's value per unit is its equity divided by the units outstanding, so an investment's
actual value is its units times the value per unit, and money coming in or going out never moves
value from one investment to another.

The events of one account, replayed in order by `replay_units`:

- `Subscription`: an investment's money paid into the account buys units at the value per unit
  in force (below); into an account that has never issued a unit, at 1 per unit. A subscription
  whose money is not in the account yet (`awaiting_deposit=True`) buys no units: the investment
  is valued at cost for it, and it takes no part in the value per unit. Once the deposit is in
  the account, the caller replays with the subscription dated on the deposit's day instead.
- `Payout`: money paid out of the account for an investment (interest, performance share,
  principal, any withdrawal) redeems the investment's units at the value per unit in force.
- `EquityPoint`: the account's equity at the close of a day (the day's last sync) sets the value
  per unit: equity / units outstanding. A negative equity counts as zero, as everywhere else in
  Fidus. While no unit is outstanding an equity point changes nothing: no one holds that money.

Order and price. Events are taken by day; within a day every subscription and payout comes
first, in the order given, and the day's equity points after them (the day's close includes the
day's deposits and excludes its payouts). A flow on day D is therefore priced at the value per
unit of the latest close before D: it never depends on whether the day's sync ran before or after
the money moved. The gain or loss between that close and the flow is shared by every unit, the
new ones included. The value per unit starts at 1 and changes only at equity points.

Rounding (units carry `UNIT_PLACES` = 8 decimal places, the value per unit
`VALUE_PER_UNIT_PLACES` = 12; each quotient is computed exactly and rounded once):

- units issued = amount / value per unit, rounded DOWN to 8 places: the new holder never gets a
  fraction of a unit it did not pay for, so the pool is never diluted;
- units redeemed = amount / value per unit, rounded UP to 8 places: the leaver gives up at least
  what it takes. A payout of exactly the investment's (rounded) value may round to more units
  than it holds: it then redeems all of them. A payout above the investment's value is refused
  (`InvalidData`, code `PAYOUT_EXCEEDS_VALUE`): the others' units cannot pay for it;
- value per unit = equity / units outstanding, rounded half-even to 12 places;
- an investment's actual value = its units x the value per unit, rounded half-up to the cent,
  plus the cost of its subscriptions awaiting their deposit.

What the rounding allows (pinned by a property test):

- after an equity point, the investments' unit values add up to the equity to within
  n x 0.005 + T x 0.5E-12 (n investments holding units, T units outstanding): half a cent per
  investment, plus the value per unit's rounding, under half a cent for any account with fewer
  than 10^10 units;
- a subscription or payout leaves every other investment's value exactly as it was (the value
  per unit changes only at the next equity point); when the next equity point shows the account
  moved by that flow alone, another investment's exact value moves by at most
  VPU x 1E-8 + T x 1E-12 (the unit rounding spread over the pool; T the larger of the units
  outstanding before and after), so its value to the cent by at most one cent, and that only
  when it sits on a half cent. A payout of an investment's whole value, rounded up, leaves the
  half cent it was rounded up by to the others.

Refused (`InvalidData`): amounts that are not positive whole cents (`AMOUNT_NOT_POSITIVE`,
`AMOUNT_PRECISION`), an equity not in cents (`AMOUNT_PRECISION`), a payout for an investment
without units (`NO_UNITS_HELD`), a subscription or payout while the value per unit is zero
(`NO_VALUE_PER_UNIT`: the pool is worth nothing, so no price exists).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from backend.errors import InvalidData
from backend.funds import CENT
from backend.money.performance import ValuePoint
from backend.money.schedule import round_to_cent

__all__ = [
    "FIRST_VALUE_PER_UNIT",
    "UNIT",
    "UNIT_PLACES",
    "VALUE_PER_UNIT",
    "VALUE_PER_UNIT_PLACES",
    "EquityPoint",
    "Holding",
    "Payout",
    "Subscription",
    "UnitEvent",
    "UnitPrice",
    "UnitRegister",
    "UnitTransaction",
    "UnitTransactionKind",
    "replay_units",
    "units_issued",
    "units_redeemed",
    "value_of_units",
    "value_per_unit",
]

UNIT_PLACES = 8
VALUE_PER_UNIT_PLACES = 12
UNIT = Decimal(1).scaleb(-UNIT_PLACES)
VALUE_PER_UNIT = Decimal(1).scaleb(-VALUE_PER_UNIT_PLACES)
FIRST_VALUE_PER_UNIT = Decimal(1)
ZERO_UNITS = Decimal(0).quantize(UNIT)
ZERO_MONEY = Decimal("0.00")
# Products of units and values per unit have up to about 40 digits: exact in this context.
_WIDE = Context(prec=80)


# --- the rounding rules, one function each ---------------------------------------------------


def _quotient(numerator: Decimal, denominator: Decimal, *, places: int, rounding: str) -> Decimal:
    """numerator / denominator, computed exactly and rounded once to `places` decimal places."""
    exact = Fraction(numerator) / Fraction(denominator) * 10 ** places
    whole, rest = divmod(exact.numerator, exact.denominator)
    if rounding == ROUND_FLOOR:
        bump = 0
    elif rounding == ROUND_CEILING:
        bump = 1 if rest else 0
    elif rounding == ROUND_HALF_EVEN:
        twice = 2 * rest
        bump = 1 if twice > exact.denominator or (twice == exact.denominator and whole % 2) else 0
    else:
        raise ValueError(f"unsupported rounding {rounding}")
    return Decimal(whole + bump).scaleb(-places)


def units_issued(amount: Decimal, *, value_per_unit: Decimal) -> Decimal:
    """Units a subscription of `amount` buys: rounded down to 8 places."""
    return _quotient(amount, value_per_unit, places=UNIT_PLACES, rounding=ROUND_FLOOR)


def units_redeemed(amount: Decimal, *, value_per_unit: Decimal) -> Decimal:
    """Units a payout of `amount` redeems: rounded up to 8 places."""
    return _quotient(amount, value_per_unit, places=UNIT_PLACES, rounding=ROUND_CEILING)


def value_per_unit(equity: Decimal, *, units_outstanding: Decimal) -> Decimal:
    """Equity (a negative one as zero) / units outstanding, half-even to 12 places."""
    if units_outstanding <= 0:
        raise ValueError("a value per unit needs units outstanding")
    return _quotient(max(equity, ZERO_MONEY), units_outstanding,
                     places=VALUE_PER_UNIT_PLACES, rounding=ROUND_HALF_EVEN)


def value_of_units(units: Decimal, *, value_per_unit: Decimal) -> Decimal:
    """Units x value per unit, half-up to the cent."""
    with localcontext(_WIDE):
        return round_to_cent(units * value_per_unit)


# --- the events ------------------------------------------------------------------------------


def _check_amount(amount: Decimal, *, what: str) -> None:
    if not amount.is_finite() or amount <= 0:
        raise InvalidData(f"{what} {amount} is not a positive amount",
                          code="AMOUNT_NOT_POSITIVE", details={"amount": str(amount)})
    if amount != amount.quantize(CENT):
        raise InvalidData(f"{what} {amount} has more than two decimal places",
                          code="AMOUNT_PRECISION", details={"amount": str(amount)})


@dataclass(frozen=True, slots=True)
class Subscription:
    """An investment's money paid into the account (or, awaiting its deposit, not yet)."""

    investment_id: str
    on: date
    amount: Decimal
    awaiting_deposit: bool = False

    def __post_init__(self) -> None:
        _check_amount(self.amount, what="the subscription")


@dataclass(frozen=True, slots=True)
class Payout:
    """Money paid out of the account for an investment: a payout or a withdrawal."""

    investment_id: str
    on: date
    amount: Decimal

    def __post_init__(self) -> None:
        _check_amount(self.amount, what="the payout")


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The account's equity at the close of `on` (may be negative: it then counts as zero)."""

    on: date
    equity: Decimal

    def __post_init__(self) -> None:
        if not self.equity.is_finite() or self.equity != self.equity.quantize(CENT):
            raise InvalidData(f"the equity {self.equity} is not an amount in cents",
                              code="AMOUNT_PRECISION", details={"equity": str(self.equity)})


UnitEvent = Subscription | Payout | EquityPoint


# --- what a replay gives ---------------------------------------------------------------------


class UnitTransactionKind(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"


@dataclass(frozen=True, slots=True)
class UnitTransaction:
    """Units issued or redeemed for one flow, and the price they moved at: the audit trail."""

    investment_id: str
    on: date
    kind: UnitTransactionKind
    amount: Decimal
    value_per_unit: Decimal
    units: Decimal


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """The account at one close: equity (a negative one as zero), units, value per unit."""

    on: date
    equity: Decimal
    units_outstanding: Decimal
    value_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class Holding:
    """One investment's place in the pool."""

    investment_id: str
    units: Decimal
    #: Subscriptions whose money is not in the account yet, valued at cost.
    awaiting_deposit: Decimal
    #: Money the investment's units were bought with, and money paid out against them.
    subscribed: Decimal
    paid_out: Decimal

    def value(self, value_per_unit: Decimal) -> Decimal:
        """Actual value: units x value per unit to the cent, plus what awaits its deposit."""
        return value_of_units(self.units, value_per_unit=value_per_unit) + self.awaiting_deposit


@dataclass(frozen=True, slots=True)
class UnitRegister:
    """The account's pool after a replay: who holds what, and the value per unit over time."""

    holdings: Mapping[str, Holding]
    units_outstanding: Decimal
    #: The value per unit in force now: the latest close's (1 before any).
    value_per_unit: Decimal
    #: The day the first units were issued; None while none ever were.
    inception: date | None
    #: Every equity point taken, in order.
    prices: tuple[UnitPrice, ...]
    transactions: tuple[UnitTransaction, ...]
    #: The subscriptions still awaiting their deposit, in order.
    awaiting: tuple[Subscription, ...]
    #: The equity of the latest close (a negative one as zero); None before any.
    equity: Decimal | None

    def value_of(self, investment_id: str) -> Decimal:
        """The investment's actual value now (0.00 for an investment the account never saw)."""
        holding = self.holdings.get(investment_id)
        return ZERO_MONEY if holding is None else holding.value(self.value_per_unit)

    def values(self) -> dict[str, Decimal]:
        """Every investment's actual value now."""
        return {key: holding.value(self.value_per_unit) for key, holding in self.holdings.items()}

    def awaiting_deposit(self) -> dict[str, Decimal]:
        """The investments with money awaiting its deposit, and how much."""
        return {key: holding.awaiting_deposit for key, holding in self.holdings.items()
                if holding.awaiting_deposit}

    def value_per_unit_on(self, day: date) -> Decimal:
        """The value per unit at the close of `day`: the latest equity point on or before it
        (1 before any)."""
        latest = FIRST_VALUE_PER_UNIT
        for price in self.prices:
            if price.on > day:
                break
            latest = price.value_per_unit
        return latest

    def price_for_flows_on(self, day: date) -> Decimal:
        """The value per unit a subscription or payout on `day` moves at: the latest close
        before `day`."""
        return self.value_per_unit_on(day - timedelta(days=1))

    def units_on(self, investment_id: str, day: date) -> Decimal:
        """The units the investment held at the close of `day`."""
        units = ZERO_UNITS
        for transaction in self.transactions:
            if transaction.on > day:
                break
            if transaction.investment_id == investment_id:
                units += (transaction.units if transaction.kind is UnitTransactionKind.ISSUED
                          else -transaction.units)
        return units

    def value_per_unit_series(self) -> tuple[ValuePoint, ...]:
        """From inception: the first issue price on the inception day, then every close from
        that day on. Empty while no unit was ever issued."""
        if self.inception is None:
            return ()
        first = next(t.value_per_unit for t in self.transactions)
        return (ValuePoint(on=self.inception, value=first),
                *(ValuePoint(on=p.on, value=p.value_per_unit)
                  for p in self.prices if p.on >= self.inception))

    def value_series(self, investment_id: str) -> tuple[ValuePoint, ...]:
        """The investment's actual value at the close of every day, from its first
        subscription on, on which it moved or the account closed: the units it then held x the
        value per unit of that close (the latest on or before it), plus what then awaited its
        deposit."""
        own = [t for t in self.transactions if t.investment_id == investment_id]
        waits = [s for s in self.awaiting if s.investment_id == investment_id]
        if not own and not waits:
            return ()
        first = min([t.on for t in own] + [s.on for s in waits])
        days = sorted({t.on for t in own} | {s.on for s in waits}
                      | {p.on for p in self.prices if p.on >= first})
        units, awaiting, price = ZERO_UNITS, ZERO_MONEY, FIRST_VALUE_PER_UNIT
        next_own = next_wait = next_price = 0
        series: list[ValuePoint] = []
        for day in days:
            while next_own < len(own) and own[next_own].on <= day:
                moved = own[next_own]
                units += (moved.units if moved.kind is UnitTransactionKind.ISSUED
                          else -moved.units)
                next_own += 1
            while next_wait < len(waits) and waits[next_wait].on <= day:
                awaiting += waits[next_wait].amount
                next_wait += 1
            while next_price < len(self.prices) and self.prices[next_price].on <= day:
                price = self.prices[next_price].value_per_unit
                next_price += 1
            series.append(ValuePoint(
                on=day, value=value_of_units(units, value_per_unit=price) + awaiting))
        return tuple(series)


class _Replay:
    """The mutable state of one replay; `replay_units` freezes it into a `UnitRegister`."""

    def __init__(self) -> None:
        self.units: dict[str, Decimal] = {}
        self.awaiting: dict[str, Decimal] = {}
        self.subscribed: dict[str, Decimal] = {}
        self.paid_out: dict[str, Decimal] = {}
        self.order: list[str] = []
        self.outstanding = ZERO_UNITS
        self.price = FIRST_VALUE_PER_UNIT
        self.equity: Decimal | None = None
        self.inception: date | None = None
        self.prices: list[UnitPrice] = []
        self.transactions: list[UnitTransaction] = []
        self.awaiting_subscriptions: list[Subscription] = []

    def _know(self, investment_id: str) -> None:
        if investment_id not in self.units:
            self.order.append(investment_id)
            self.units[investment_id] = ZERO_UNITS
            self.awaiting[investment_id] = ZERO_MONEY
            self.subscribed[investment_id] = ZERO_MONEY
            self.paid_out[investment_id] = ZERO_MONEY

    def _priced(self, event: Subscription | Payout) -> Decimal:
        if self.price <= 0:
            raise InvalidData(
                f"the account's value per unit is zero on {event.on.isoformat()}: "
                f"no price for {event.investment_id}'s {event.amount}",
                code="NO_VALUE_PER_UNIT",
                details={"investment_id": event.investment_id, "on": event.on.isoformat()})
        return self.price

    def subscribe(self, event: Subscription) -> None:
        self._know(event.investment_id)
        if event.awaiting_deposit:
            self.awaiting[event.investment_id] += event.amount
            self.awaiting_subscriptions.append(event)
            return
        price = self._priced(event)
        units = units_issued(event.amount, value_per_unit=price)
        self.units[event.investment_id] += units
        self.subscribed[event.investment_id] += event.amount
        self.outstanding += units
        if self.inception is None:
            self.inception = event.on
        self.transactions.append(UnitTransaction(
            investment_id=event.investment_id, on=event.on, kind=UnitTransactionKind.ISSUED,
            amount=event.amount, value_per_unit=price, units=units))

    def pay_out(self, event: Payout) -> None:
        self._know(event.investment_id)
        held = self.units[event.investment_id]
        if held <= 0:
            raise InvalidData(
                f"{event.investment_id} holds no units on {event.on.isoformat()} to pay "
                f"{event.amount} out of", code="NO_UNITS_HELD",
                details={"investment_id": event.investment_id, "on": event.on.isoformat()})
        price = self._priced(event)
        units = units_redeemed(event.amount, value_per_unit=price)
        if units > held:
            value = value_of_units(held, value_per_unit=price)
            if event.amount > value:
                raise InvalidData(
                    f"a payout of {event.amount} for {event.investment_id} on "
                    f"{event.on.isoformat()} is more than its value of {value}",
                    code="PAYOUT_EXCEEDS_VALUE",
                    details={"investment_id": event.investment_id, "on": event.on.isoformat(),
                             "amount": str(event.amount), "value": str(value)})
            units = held
        self.units[event.investment_id] -= units
        self.paid_out[event.investment_id] += event.amount
        self.outstanding -= units
        self.transactions.append(UnitTransaction(
            investment_id=event.investment_id, on=event.on, kind=UnitTransactionKind.REDEEMED,
            amount=event.amount, value_per_unit=price, units=units))

    def close(self, event: EquityPoint) -> None:
        equity = max(event.equity, ZERO_MONEY)
        self.equity = equity
        if self.outstanding > 0:
            self.price = value_per_unit(equity, units_outstanding=self.outstanding)
        self.prices.append(UnitPrice(on=event.on, equity=equity,
                                     units_outstanding=self.outstanding,
                                     value_per_unit=self.price))

    def register(self) -> UnitRegister:
        holdings = {
            key: Holding(investment_id=key, units=self.units[key],
                         awaiting_deposit=self.awaiting[key], subscribed=self.subscribed[key],
                         paid_out=self.paid_out[key])
            for key in self.order}
        return UnitRegister(
            holdings=MappingProxyType(holdings), units_outstanding=self.outstanding,
            value_per_unit=self.price, inception=self.inception, prices=tuple(self.prices),
            transactions=tuple(self.transactions), awaiting=tuple(self.awaiting_subscriptions),
            equity=self.equity)


def _replay_order(indexed: tuple[int, UnitEvent]) -> tuple[date, int, int]:
    position, event = indexed
    return event.on, 1 if isinstance(event, EquityPoint) else 0, position


def replay_units(events: Iterable[UnitEvent], *, through: date | None = None) -> UnitRegister:
    """The account's register after its events (those on or before `through`, if given), in
    the order the module docstring sets: by day, the day's flows before its equity points."""
    replay = _Replay()
    for _, event in sorted(enumerate(events), key=_replay_order):
        if through is not None and event.on > through:
            break
        if isinstance(event, Subscription):
            replay.subscribe(event)
        elif isinstance(event, Payout):
            replay.pay_out(event)
        else:
            replay.close(event)
    return replay.register()
