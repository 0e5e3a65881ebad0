"""Performance: a hand-computed time-weighted return over three sub-periods with a flow in the
middle, by units and by chain-linking; daily and monthly returns; XIRR on published examples."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import pyxirr

from backend.money.performance import (
    CashFlow,
    MonthlyReturn,
    PeriodReturn,
    ValuePoint,
    as_percent,
    chain_link,
    combine_value_series,
    daily_returns,
    holding_period_return,
    money_weighted_return,
    monthly_returns,
    portfolio_time_weighted_return,
    time_weighted_return,
    value_on,
)
from backend.money.units import EquityPoint, Subscription, UnitEvent, replay_units

FIRST = "INV-CLIENT2-0001"
SECOND = "INV-CLIENT2-0002"
START, END_OF_JANUARY = date(2025, 1, 1), date(2025, 1, 31)
BEFORE_THE_FLOW, THE_FLOW, END_OF_FEBRUARY = date(2025, 2, 14), date(2025, 2, 15), date(2025, 2, 28)


def d(text: str) -> Decimal:
    return Decimal(text)


def three_sub_periods() -> list[UnitEvent]:
    """100,000 in; +5 % to the end of January; -2 % to the 14th of February; 50,000 in on the
    15th; +3 % on 152,900 to the end of February."""
    return [Subscription(FIRST, START, d("100000.00")),
            EquityPoint(END_OF_JANUARY, d("105000.00")),
            EquityPoint(BEFORE_THE_FLOW, d("102900.00")),
            Subscription(SECOND, THE_FLOW, d("50000.00")),
            EquityPoint(END_OF_FEBRUARY, d("157487.00"))]


# By hand: 1.05 x 0.98 x 1.03 = 1.05987.
HAND_COMPUTED_TWR = d("0.05987")


def test_the_hand_computed_three_period_return_by_chain_linking() -> None:
    returns = [holding_period_return(start_value=d("100000.00"), end_value=d("105000.00")),
               holding_period_return(start_value=d("105000.00"), end_value=d("102900.00")),
               holding_period_return(start_value=d("102900.00"), end_value=d("157487.00"),
                                     flow_at_start=d("50000.00"))]
    assert returns == [d("0.05"), d("-0.02"), d("0.03")]
    assert chain_link(r for r in returns if r is not None) == HAND_COMPUTED_TWR


def test_the_value_per_unit_series_gives_the_same_return_without_knowing_the_flow() -> None:
    series = replay_units(three_sub_periods()).value_per_unit_series()
    assert series[-1].value == d("1.059870000000")
    assert time_weighted_return(series) == HAND_COMPUTED_TWR
    assert time_weighted_return(series, start=END_OF_JANUARY) == d("0.0094")   # 1.05987 / 1.05
    assert time_weighted_return(series, end=BEFORE_THE_FLOW) == d("0.029")
    assert time_weighted_return(series, start=date(2024, 12, 1)) == HAND_COMPUTED_TWR


def test_the_portfolio_chain_link_of_money_values_and_flows_agrees() -> None:
    register = replay_units(three_sub_periods())
    values = combine_value_series([register.value_series(FIRST), register.value_series(SECOND)])
    assert value_on(values, THE_FLOW) == d("152900.00")
    flows = [CashFlow(START, d("-100000.00")), CashFlow(THE_FLOW, d("-50000.00"))]
    assert portfolio_time_weighted_return(values, flows, start=date(2024, 12, 31),
                                          end=END_OF_FEBRUARY) == HAND_COMPUTED_TWR
    assert portfolio_time_weighted_return(values, flows, start=END_OF_JANUARY,
                                          end=END_OF_FEBRUARY) == d("0.0094")
    assert portfolio_time_weighted_return(values, flows, start=date(2024, 1, 1),
                                          end=date(2024, 12, 31)) is None


def test_daily_and_monthly_returns() -> None:
    series = replay_units(three_sub_periods()).value_per_unit_series()
    assert daily_returns(series) == (
        PeriodReturn(START, START, d("0")),
        PeriodReturn(START, END_OF_JANUARY, d("0.05")),
        PeriodReturn(END_OF_JANUARY, BEFORE_THE_FLOW, d("-0.02")),
        PeriodReturn(BEFORE_THE_FLOW, END_OF_FEBRUARY, d("0.03")),
    )
    assert monthly_returns(series) == (MonthlyReturn(2025, 1, d("0.05")),
                                       MonthlyReturn(2025, 2, d("0.0094")))


def test_a_days_last_close_is_its_close() -> None:
    series = [ValuePoint(START, d("1")), ValuePoint(date(2025, 1, 2), d("1.1")),
              ValuePoint(date(2025, 1, 2), d("1.2")), ValuePoint(date(2025, 1, 3), d("1.26"))]
    assert [r.rate for r in daily_returns(series)] == [d("0"), d("0.2"), d("0.05")]


def test_returns_without_a_base_are_none_not_zero() -> None:
    assert time_weighted_return([]) is None
    assert time_weighted_return([ValuePoint(START, d("0")), ValuePoint(END_OF_JANUARY, d("1"))],
                                ) is None
    assert time_weighted_return([ValuePoint(START, d("1"))], end=date(2024, 1, 1)) is None
    assert holding_period_return(start_value=d("0"), end_value=d("10")) is None
    with pytest.raises(ValueError, match="date order"):
        time_weighted_return([ValuePoint(END_OF_JANUARY, d("1")), ValuePoint(START, d("1"))])


# --- money-weighted return ------------------------------------------------------------------


def test_xirr_matches_the_spreadsheet_documentation_example() -> None:
    flows = [CashFlow(date(2008, 1, 1), d("-10000")), CashFlow(date(2008, 3, 1), d("2750")),
             CashFlow(date(2008, 10, 30), d("4250")), CashFlow(date(2009, 2, 15), d("3250"))]
    rate = money_weighted_return(flows, value=d("2750"), on=date(2009, 4, 1))
    assert rate is not None
    # The documentation shows 0.373362535; the spreadsheet stops iterating within 1E-8.
    assert abs(rate - d("0.373362535")) < d("1E-8")
    assert as_percent(rate) == d("37.34")


def test_xirr_matches_the_openoffice_example() -> None:
    flows = [CashFlow(date(2008, 2, 5), d("-2750")), CashFlow(date(2008, 7, 5), d("1000"))]
    rate = money_weighted_return(flows, value=d("2000"), on=date(2009, 1, 5))
    assert rate is not None
    assert round(rate, 3) == d("0.124")


def test_xirr_with_flows_out_of_date_order_matches_the_published_figure() -> None:
    flows = [CashFlow(date(2015, 6, 11), d("-1000")), CashFlow(date(2015, 7, 21), d("-9000")),
             CashFlow(date(2015, 10, 17), d("-3000"))]
    rate = money_weighted_return(list(reversed(flows)), value=d("20000"), on=date(2018, 6, 10))
    assert rate is not None
    assert abs(rate - d("0.1635371584432641")) < d("1E-9")


def test_the_money_weighted_return_of_the_three_periods_discounts_its_flows_to_zero() -> None:
    flows = [CashFlow(START, d("-100000.00")), CashFlow(THE_FLOW, d("-50000.00"))]
    rate = money_weighted_return(flows, value=d("157487.00"), on=END_OF_FEBRUARY)
    assert rate is not None and rate > 0
    dates = [START, THE_FLOW, END_OF_FEBRUARY]
    assert abs(pyxirr.xnpv(float(rate), dates, [-100000.0, -50000.0, 157487.0])) < 1e-3
    # More money was in for the weaker weeks, so the money-weighted rate, annualised, is not the
    # time-weighted one annualised.
    annualised_twr = (1 + float(HAND_COMPUTED_TWR)) ** (365 / 58) - 1
    assert abs(float(rate) - annualised_twr) > 0.01


def test_money_weighted_return_edges() -> None:
    paid_in = [CashFlow(START, d("-100.00"))]
    assert money_weighted_return(paid_in, value=d("0.00"), on=END_OF_JANUARY) == d("-1")
    assert money_weighted_return([], value=d("100.00"), on=END_OF_JANUARY) is None
    assert money_weighted_return(paid_in, value=d("100.00"), on=END_OF_JANUARY) == d("0")


def test_a_flow_on_a_day_without_a_close_joins_the_next_sub_period() -> None:
    values = [ValuePoint(START, d("100.00")), ValuePoint(END_OF_JANUARY, d("110.00")),
              ValuePoint(END_OF_FEBRUARY, d("170.00"))]
    flows = [CashFlow(START, d("-100.00")), CashFlow(THE_FLOW, d("-50.00")),
             CashFlow(date(2025, 3, 3), d("-1000.00"))]
    # 110 / 100 then 170 / (110 + 50); the March flow comes after the last close.
    assert portfolio_time_weighted_return(values, flows, start=date(2024, 12, 31),
                                          end=date(2025, 3, 31)) == d("0.16875")
