"""Performance: time-weighted returns from a value-per-unit series, money-weighted returns of flows.

A return is a fraction (0.0179 is 1.79 %), computed exactly from the Decimals it comes from and
rounded half-even to `RETURN_PLACES` = 10 places; `as_percent` turns one into percent to two
places, half-up, for display. A return that has no meaning (a base of zero, no money invested)
is None, never a made-up zero.

Time-weighted return (TWR): what one unit earned, whatever money came and went. From a
value-per-unit series it is the ratio of two values per unit minus one, since units already
keep flows out of the price:

- a series is a sequence of `ValuePoint`s in date order; the value at the close of a day is the
  last point on or before it, and the series' first point is its base (its inception);
- `time_weighted_return(series, start=, end=)`: from the close of `start` (or the base, if
  `start` is before the first point or not given) to the close of `end` (or the last point);
- `daily_returns` and `monthly_returns`: each day (month) that has a point, from the close of the
  previous day (month) with one, or from the base for the first;
- the classic chain-linking, for a portfolio's money values and its flows
  (`portfolio_time_weighted_return`): each close the values give ends a sub-period that starts
  at the previous close plus the net money in since (a flow on day D moves at the close before
  D, as units do); the sub-period returns, each rounded as any return, are chain-linked:
  (1 + r1) x (1 + r2) x ... - 1. A sub-period with no capital at its start adds nothing.

Money-weighted return (MWR): the annual rate that makes the flows' net present value zero, as the
spreadsheets' XIRR computes it (actual days / 365), solved by pyxirr in binary floating point and
rounded to 10 places (a rate, never money). Flows are from the investor's side: money paid in is
negative, money received (payouts, the current value) positive. With money in and nothing ever
back, the rate is -1 (all of it lost); with no money in, or when the solver finds no rate, None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

import pyxirr

__all__ = [
    "RETURN_PLACES",
    "CashFlow",
    "MonthlyReturn",
    "PeriodReturn",
    "ValuePoint",
    "as_percent",
    "chain_link",
    "combine_value_series",
    "daily_returns",
    "holding_period_return",
    "money_weighted_return",
    "monthly_returns",
    "portfolio_time_weighted_return",
    "time_weighted_return",
    "value_on",
]

RETURN_PLACES = 10
_RETURN = Decimal(1).scaleb(-RETURN_PLACES)
_PERCENT = Decimal("0.01")
# Wide enough for a ratio of two 34-digit figures, and for the absurd annual rates XIRR gives
# over a few days (up to the largest float), so quantizing never overflows the context.
_WIDE = Context(prec=400)


@dataclass(frozen=True, slots=True)
class ValuePoint:
    """A value (per unit, or in money) at the close of a day."""

    on: date
    value: Decimal


@dataclass(frozen=True, slots=True)
class PeriodReturn:
    """The return from the close of `since` to the close of `through`."""

    since: date
    through: date
    rate: Decimal | None


@dataclass(frozen=True, slots=True)
class MonthlyReturn:
    year: int
    month: int
    rate: Decimal | None


@dataclass(frozen=True, slots=True)
class CashFlow:
    """Money between the investor and the investment: negative paid in, positive received."""

    on: date
    amount: Decimal


def _rounded(rate: Decimal) -> Decimal:
    with localcontext(_WIDE):
        return rate.quantize(_RETURN, rounding=ROUND_HALF_EVEN)


def _ratio_less_one(end: Decimal, base: Decimal) -> Decimal | None:
    if base <= 0:
        return None
    with localcontext(_WIDE):
        return _rounded(end / base - 1)


def as_percent(rate: Decimal) -> Decimal:
    """A return in percent, half-up to two places: 0.373362535 -> 37.34."""
    with localcontext(_WIDE):
        return (rate * 100).quantize(_PERCENT, rounding=ROUND_HALF_UP)


def holding_period_return(*, start_value: Decimal, end_value: Decimal,
                          flow_at_start: Decimal = Decimal(0)) -> Decimal | None:
    """end / (start + money in at the start) - 1; None without capital at the start."""
    return _ratio_less_one(end_value, start_value + flow_at_start)


def chain_link(returns: Iterable[Decimal]) -> Decimal:
    """(1 + r1) x (1 + r2) x ... - 1, exact, then rounded."""
    with localcontext(_WIDE):
        growth = Decimal(1)
        for rate in returns:
            growth *= 1 + rate
        return _rounded(growth - 1)


def _check_order(series: Sequence[ValuePoint]) -> None:
    if any(later.on < earlier.on for earlier, later in zip(series, series[1:], strict=False)):
        raise ValueError("a value series must be in date order")


def value_on(series: Sequence[ValuePoint], day: date) -> Decimal | None:
    """The value at the close of `day`: the last point on or before it; None before the first."""
    latest: Decimal | None = None
    for point in series:
        if point.on > day:
            break
        latest = point.value
    return latest


def time_weighted_return(series: Sequence[ValuePoint], *, start: date | None = None,
                         end: date | None = None) -> Decimal | None:
    """From the close of `start` (or the base) to the close of `end` (or the last point)."""
    _check_order(series)
    if not series:
        return None
    base = series[0].value if start is None else value_on(series, start)
    if base is None:
        base = series[0].value
    last = series[-1].value if end is None else value_on(series, end)
    if last is None:
        return None
    return _ratio_less_one(last, base)


def _by_day(day: date) -> tuple[int, ...]:
    return day.year, day.month, day.day


def _by_month(day: date) -> tuple[int, ...]:
    return day.year, day.month


def _returns_by(series: Sequence[ValuePoint], bucket: Callable[[date], tuple[int, ...]],
                ) -> list[tuple[tuple[int, ...], date, date, Decimal | None]]:
    """Per bucket with a point: its last close against the previous bucket's (or the base)."""
    _check_order(series)
    closes: dict[tuple[int, ...], ValuePoint] = {}
    for point in series:
        closes[bucket(point.on)] = point
    found: list[tuple[tuple[int, ...], date, date, Decimal | None]] = []
    if not series:
        return found
    base = series[0]
    for key, close in closes.items():
        found.append((key, base.on, close.on, _ratio_less_one(close.value, base.value)))
        base = close
    return found


def daily_returns(series: Sequence[ValuePoint]) -> tuple[PeriodReturn, ...]:
    """Each day with a point: from the previous day's close (the base for the first day)."""
    return tuple(PeriodReturn(since=since, through=through, rate=rate)
                 for _, since, through, rate in _returns_by(series, _by_day))


def monthly_returns(series: Sequence[ValuePoint]) -> tuple[MonthlyReturn, ...]:
    """Each calendar month with a point: from the previous month's last close (the base for
    the first month)."""
    return tuple(MonthlyReturn(year=key[0], month=key[1], rate=rate)
                 for key, _, _, rate in _returns_by(series, _by_month))


def combine_value_series(series: Iterable[Sequence[ValuePoint]]) -> tuple[ValuePoint, ...]:
    """Several series as one: on each day any of them has a point, the sum of each one's value
    at that close (a series not started yet counts zero)."""
    parts = [list(one) for one in series]
    for one in parts:
        _check_order(one)
    days = sorted({point.on for one in parts for point in one})
    return tuple(ValuePoint(on=day, value=sum(
        (value for one in parts if (value := value_on(one, day)) is not None), Decimal(0)))
        for day in days)


def portfolio_time_weighted_return(values: Sequence[ValuePoint], flows: Sequence[CashFlow], *,
                                   start: date, end: date) -> Decimal | None:
    """The chain-linked return of money values with flows, from the close of `start` to the
    close of `end` (the module docstring's rule); None when no sub-period had capital.

    Sub-periods end at the closes the values give; a flow on a day without one joins the next
    close's sub-period (at its start), and a flow after the period's last close counts for
    nothing (it had no time to earn). With a value at the close of every flow day, as
    `UnitRegister.value_series` gives, every sub-period is exact."""
    _check_order(values)
    closes = sorted({point.on for point in values if start < point.on <= end})
    money_in = [(flow.on, -flow.amount) for flow in flows if start < flow.on <= end]
    previous = value_on(values, start) or Decimal(0)
    sub_periods: list[Decimal] = []
    since = start
    for day in closes:
        arrived = sum((amount for on, amount in money_in if since < on <= day), Decimal(0))
        close = value_on(values, day) or Decimal(0)
        rate = holding_period_return(start_value=previous, end_value=close,
                                     flow_at_start=arrived)
        if rate is not None:
            sub_periods.append(rate)
        previous, since = close, day
    return chain_link(sub_periods) if sub_periods else None


def money_weighted_return(flows: Sequence[CashFlow], *, value: Decimal,
                          on: date) -> Decimal | None:
    """XIRR of the flows plus `value` received on `on` (the module docstring's rule)."""
    dated = [(flow.on, flow.amount) for flow in flows if flow.amount != 0]
    if value != 0:
        dated.append((on, value))
    if not any(amount < 0 for _, amount in dated):
        return None
    if not any(amount > 0 for _, amount in dated):
        return Decimal(-1)
    rate = pyxirr.xirr([day for day, _ in dated], [float(amount) for _, amount in dated],
                       silent=True)
    if rate is None or not math.isfinite(rate):
        return None
    return _rounded(Decimal(repr(rate)))
