"""The UNLIMITED performance share: half of the gain above a high-water mark that never falls,
on a sequence of gain, loss, partial recovery and new high, and through the unit register."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.errors import InvalidData
from backend.funds import FundTerms, default_catalog
from backend.money.performance_share import (
    PerformanceShareValuation,
    performance_share_on,
    performance_shares,
    valuation_for,
    with_performance_shares,
)
from backend.money.schedule import build_schedule
from backend.money.units import EquityPoint, Payout, Subscription, UnitEvent, replay_units

INVESTMENT = "INV-CLIENT3-UNLTD"
DEPOSIT = date(2025, 1, 31)


def d(text: str) -> Decimal:
    return Decimal(text)


def unlimited() -> FundTerms:
    return default_catalog().terms_on("UNLIMITED", DEPOSIT)


def valuation(day: date, value_per_unit: str, units: str) -> PerformanceShareValuation:
    return PerformanceShareValuation(due_date=day, value_per_unit=d(value_per_unit),
                                     units=d(units))


def test_gain_loss_partial_recovery_and_a_new_high() -> None:
    shares = performance_shares(unlimited(), purchase_value_per_unit=d("1"), valuations=[
        valuation(date(2025, 6, 30), "1.08", "250000"),
        valuation(date(2025, 9, 30), "1.02", "240740.74074074"),
        valuation(date(2025, 12, 31), "1.06", "240740.74074074"),
        valuation(date(2026, 3, 31), "1.10", "240740.74074074"),
    ])
    assert [(s.gain, s.amount, s.mark_before, s.mark_after) for s in shares] == [
        # 250,000 x 0.08 = 20,000.00; half of it.
        (d("20000.00"), d("10000.00"), d("1"), d("1.08")),
        # A loss: nothing, and the mark stays.
        (d("0.00"), d("0.00"), d("1.08"), d("1.08")),
        # Back up, but still under the mark: nothing.
        (d("0.00"), d("0.00"), d("1.08"), d("1.08")),
        # A new high: 240,740.74074074 x 0.02 = 4,814.8148148148; half is 2,407.4074...
        (d("4814.81"), d("2407.41"), d("1.08"), d("1.10")),
    ]


def test_half_a_cent_of_share_rounds_up() -> None:
    share = performance_share_on(valuation(DEPOSIT, "1.0001", "100"), mark=d("1"),
                                 share_percent=d("50"))
    # A gain of 0.01: half of it is 0.005, which banker's rounding would make 0.00.
    assert (share.gain, share.amount, share.mark_after) == (d("0.01"), d("0.01"), d("1.0001"))


def test_a_share_under_half_a_cent_pays_nothing_and_keeps_the_mark() -> None:
    shares = performance_shares(unlimited(), purchase_value_per_unit=d("1"), valuations=[
        valuation(date(2025, 6, 30), "1.00008", "100"),     # 0.008 gained: 0.004 to pay
        valuation(date(2025, 9, 30), "1.00012", "100"),     # 0.012 above the mark still at 1
    ])
    assert [(s.amount, s.mark_after) for s in shares] == [
        (d("0.00"), d("1")), (d("0.01"), d("1.00012"))]


def test_a_fixed_interest_fund_has_no_performance_share() -> None:
    with pytest.raises(InvalidData) as refused:
        performance_shares(default_catalog().terms_on("CORE", DEPOSIT),
                           purchase_value_per_unit=d("1"), valuations=[])
    assert refused.value.code == "NOT_A_PERFORMANCE_SHARE_FUND"


def test_through_the_unit_register_each_share_is_paid_out_of_the_units() -> None:
    plan = build_schedule(unlimited(), principal=d("250000.00"), deposit_date=DEPOSIT)
    due = [item.due_date for item in plan.payouts]
    assert due == [date(2025, 6, 30), date(2025, 9, 30), date(2025, 12, 31), date(2026, 3, 31)]
    closes = {due[0]: "312500.00", due[1]: "270000.00", due[2]: "279000.00", due[3]: "288000.00"}
    events: list[UnitEvent] = [Subscription(INVESTMENT, DEPOSIT, d("250000.00"))]
    mark = d("1")
    shares = []
    for day in due:
        events.append(EquityPoint(date.fromordinal(day.toordinal() - 1), d(closes[day])))
        share = performance_share_on(valuation_for(replay_units(events), INVESTMENT,
                                                   due_date=day),
                                     mark=mark, share_percent=d("50"))
        shares.append(share)
        mark = share.mark_after
        if share.amount > 0:
            events.append(Payout(INVESTMENT, day, share.amount))

    # 1.25 per unit: 250,000 x 0.25 / 2 = 31,250.00, which redeems 25,000 units; then 1.20 and
    # 1.24 on 225,000 units pay nothing; 1.28 pays 225,000 x 0.03 / 2 = 3,375.00.
    assert [(s.value_per_unit, s.units, s.amount) for s in shares] == [
        (d("1.25"), d("250000"), d("31250.00")),
        (d("1.2"), d("225000"), d("0.00")),
        (d("1.24"), d("225000"), d("0.00")),
        (d("1.28"), d("225000"), d("3375.00")),
    ]
    filled = with_performance_shares(plan, shares)
    assert [item.amount for item in filled.payouts] == [
        d("31250.00"), d("0.00"), d("0.00"), d("3375.00")]
    assert filled.items[-1].amount == d("250000.00")
    assert [item.amount for item in plan.payouts] == [None] * 4
