"""Unit accounting for one MT5 account: the top-up case of the issue both ways, each rounding
rule on a figure where it matters, and property tests over random account histories."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidData
from backend.money.performance import ValuePoint
from backend.money.units import (
    EquityPoint,
    Payout,
    Subscription,
    UnitEvent,
    UnitRegister,
    UnitTransactionKind,
    replay_units,
    units_issued,
    units_redeemed,
    value_of_units,
    value_per_unit,
)

OLD = "INV-CLIENT1-80000"
TOP_UP = "INV-CLIENT1-20000"
DEPOSIT = date(2025, 1, 6)
SYNC = date(2025, 3, 14)
TOP_UP_DAY = date(2025, 3, 17)


def money(text: str) -> Decimal:
    return Decimal(text)


def client1_at_one_point_seven_nine_percent() -> list[UnitEvent]:
    return [Subscription(OLD, DEPOSIT, money("80000.00")),
            EquityPoint(SYNC, money("81430.89"))]


# --- the top-up case ----------------------------------------------------------------


def test_a_top_up_whose_deposit_is_in_the_account_leaves_the_earlier_gain_where_it_was() -> None:
    register = replay_units([*client1_at_one_point_seven_nine_percent(),
                             Subscription(TOP_UP, TOP_UP_DAY, money("20000.00")),
                             EquityPoint(TOP_UP_DAY, money("101430.89"))])

    assert register.values() == {OLD: money("81430.89"), TOP_UP: money("20000.00")}
    assert register.value_of(OLD) - money("80000.00") == money("1430.89")
    # The top-up bought its units at the close before its day: 81,430.89 / 80,000 units.
    bought = register.transactions[-1]
    assert (bought.investment_id, bought.value_per_unit, bought.units) == (
        TOP_UP, money("1.017886125000"), money("19648.56334002"))
    assert register.units_outstanding == money("99648.56334002")
    # The split by principal it replaces gave the top-up 286.18 of the earlier gain.
    by_principal = (money("101430.89") * money("20000.00") / money("100000.00")).quantize(
        money("0.01"))
    assert by_principal - money("20000.00") == money("286.18")


def test_a_top_up_awaiting_its_deposit_is_at_cost_and_leaves_the_pool_alone() -> None:
    register = replay_units([*client1_at_one_point_seven_nine_percent(),
                             Subscription(TOP_UP, TOP_UP_DAY, money("20000.00"),
                                          awaiting_deposit=True),
                             EquityPoint(TOP_UP_DAY, money("81430.89"))])

    assert register.values() == {OLD: money("81430.89"), TOP_UP: money("20000.00")}
    assert register.awaiting_deposit() == {TOP_UP: money("20000.00")}
    assert register.holdings[TOP_UP].units == 0
    assert register.units_outstanding == money("80000.00000000")
    assert register.value_per_unit == money("1.017886125000")


def test_once_its_deposit_is_in_the_awaiting_top_up_buys_units_on_the_deposit_day() -> None:
    deposit_seen = date(2025, 3, 19)
    register = replay_units([*client1_at_one_point_seven_nine_percent(),
                             EquityPoint(TOP_UP_DAY, money("81430.89")),
                             EquityPoint(date(2025, 3, 18), money("81837.20")),
                             Subscription(TOP_UP, deposit_seen, money("20000.00")),
                             EquityPoint(deposit_seen, money("101837.20"))])
    # Priced at the 18th's close (81,837.20 / 80,000), so the 406.31 gained before it stays put.
    assert register.values() == {OLD: money("81837.20"), TOP_UP: money("20000.00")}
    assert register.awaiting_deposit() == {}


# --- pricing and order ----------------------------------------------------------------------


def test_the_first_subscription_buys_at_one_and_the_value_per_unit_moves_only_at_a_close() -> (
        None):
    register = replay_units([Subscription(OLD, DEPOSIT, money("50000.00")),
                             Subscription(TOP_UP, DEPOSIT + timedelta(days=1),
                                          money("25000.00"))])
    assert [t.value_per_unit for t in register.transactions] == [Decimal(1), Decimal(1)]
    assert register.units_outstanding == money("75000.00000000")
    assert register.inception == DEPOSIT
    assert register.prices == ()


def test_a_flow_is_priced_at_the_close_before_its_day_whatever_the_order_given() -> None:
    day = date(2025, 2, 3)
    events: list[UnitEvent] = [
        Subscription(OLD, DEPOSIT, money("10000.00")),
        EquityPoint(date(2025, 1, 31), money("11000.00")),
        # Given before the subscription of the same day, the day's close still comes after it.
        EquityPoint(day, money("12200.00")),
        Subscription(TOP_UP, day, money("1100.00")),
    ]
    register = replay_units(events)
    assert register.transactions[-1].value_per_unit == money("1.100000000000")
    assert register.transactions[-1].units == money("1000.00000000")
    assert register.value_per_unit == money("1.109090909091")  # 12,200 / 11,000 units
    assert register.values() == {OLD: money("11090.91"), TOP_UP: money("1109.09")}
    assert register.price_for_flows_on(day) == money("1.100000000000")
    assert register.value_per_unit_on(day) == money("1.109090909091")


def test_a_payout_redeems_units_at_the_close_before_its_day() -> None:
    register = replay_units([
        Subscription(OLD, DEPOSIT, money("100000.00")),
        Subscription(TOP_UP, DEPOSIT, money("50000.00")),
        EquityPoint(date(2025, 2, 28), money("157500.00")),
        Payout(OLD, date(2025, 3, 3), money("1500.00")),
        EquityPoint(date(2025, 3, 3), money("156000.00")),
    ])
    redeemed = register.transactions[-1]
    assert (redeemed.kind, redeemed.value_per_unit, redeemed.units) == (
        UnitTransactionKind.REDEEMED, money("1.050000000000"), money("1428.57142858"))
    assert register.values() == {OLD: money("103500.00"), TOP_UP: money("52500.00")}
    assert register.holdings[OLD].paid_out == money("1500.00")
    assert register.units_on(OLD, date(2025, 3, 2)) == money("100000.00000000")
    assert register.units_on(OLD, date(2025, 3, 3)) == money("98571.42857142")


def whole_value_history() -> list[UnitEvent]:
    return [Subscription(OLD, DEPOSIT, money("1.00")),
            Subscription(TOP_UP, DEPOSIT, money("199.00")),
            EquityPoint(date(2025, 1, 31), money("201.00"))]   # 1.005 per unit


def test_a_payout_of_the_whole_value_redeems_every_unit_and_no_more() -> None:
    # One unit at 1.005 is worth 1.01 (half-up), and 1.01 / 1.005 rounds up to 1.00497513 units:
    # more than held, so the payout takes every unit, and the half cent falls on the others.
    assert replay_units(whole_value_history()).value_of(OLD) == money("1.01")
    assert units_redeemed(money("1.01"), value_per_unit=money("1.005")) == money("1.00497513")
    register = replay_units([*whole_value_history(), Payout(OLD, date(2025, 2, 3), money("1.01"))])
    assert register.holdings[OLD].units == 0
    assert register.units_outstanding == money("199.00000000")


def test_a_payout_above_the_investments_value_is_refused() -> None:
    with pytest.raises(InvalidData) as refused:
        replay_units([*whole_value_history(), Payout(OLD, date(2025, 2, 3), money("1.02"))])
    assert refused.value.code == "PAYOUT_EXCEEDS_VALUE"
    assert refused.value.details["value"] == "1.01"


def test_a_payout_for_an_investment_without_units_is_refused() -> None:
    with pytest.raises(InvalidData) as refused:
        replay_units([Subscription(TOP_UP, DEPOSIT, money("200.00"), awaiting_deposit=True),
                      Payout(TOP_UP, date(2025, 2, 3), money("1.00"))])
    assert refused.value.code == "NO_UNITS_HELD"


def test_a_negative_equity_counts_as_zero_and_then_nothing_can_be_priced() -> None:
    events: list[UnitEvent] = [Subscription(OLD, DEPOSIT, money("100.00")),
                               EquityPoint(date(2025, 1, 31), money("-12.50"))]
    register = replay_units(events)
    assert (register.value_per_unit, register.equity, register.value_of(OLD)) == (
        Decimal(0).scaleb(-12), money("0.00"), money("0.00"))
    with pytest.raises(InvalidData) as refused:
        replay_units([*events, Subscription(TOP_UP, date(2025, 2, 3), money("100.00"))])
    assert refused.value.code == "NO_VALUE_PER_UNIT"
    # A later close with money in the account gives the units their value back.
    recovered = replay_units([*events, EquityPoint(date(2025, 2, 3), money("40.00"))])
    assert recovered.value_of(OLD) == money("40.00")


def test_a_close_while_no_unit_is_outstanding_changes_nothing() -> None:
    register = replay_units([EquityPoint(date(2025, 1, 2), money("5000.00")),
                             Subscription(OLD, DEPOSIT, money("100.00"))])
    assert register.transactions[0].value_per_unit == Decimal(1)
    assert register.prices[0].units_outstanding == 0


def test_an_investments_value_series_counts_its_units_and_what_awaits_its_deposit() -> None:
    register = replay_units([*client1_at_one_point_seven_nine_percent(),
                             Subscription(TOP_UP, TOP_UP_DAY, money("20000.00"),
                                          awaiting_deposit=True),
                             EquityPoint(TOP_UP_DAY, money("81430.89")),
                             Payout(OLD, date(2025, 3, 20), money("430.89")),
                             EquityPoint(date(2025, 3, 21), money("82000.00"))])
    # The payout redeemed 430.89 / 1.017886125 = 423.318472876... units, rounded up.
    assert register.units_on(OLD, date(2025, 3, 20)) == money("79576.68152712")
    assert register.value_series(OLD) == (
        ValuePoint(DEPOSIT, money("80000.00")),
        ValuePoint(SYNC, money("81430.89")),
        ValuePoint(TOP_UP_DAY, money("81430.89")),
        ValuePoint(date(2025, 3, 20), money("81000.00")),
        ValuePoint(date(2025, 3, 21), money("82000.00")),
    )
    assert register.value_series(TOP_UP) == (
        ValuePoint(TOP_UP_DAY, money("20000.00")), ValuePoint(date(2025, 3, 21),
                                                              money("20000.00")))
    assert register.value_series("INV-NEVER-SEEN") == ()


def test_a_replay_through_a_day_ignores_what_came_after() -> None:
    events: list[UnitEvent] = [*client1_at_one_point_seven_nine_percent(),
                               Subscription(TOP_UP, TOP_UP_DAY, money("20000.00")),
                               EquityPoint(TOP_UP_DAY, money("101430.89"))]
    before = replay_units(events, through=SYNC)
    assert before.values() == {OLD: money("81430.89")}
    assert before.units_outstanding == money("80000.00000000")


def test_the_value_per_unit_series_starts_at_inception() -> None:
    register = replay_units([EquityPoint(date(2025, 1, 2), money("0.00")),
                             *client1_at_one_point_seven_nine_percent()])
    assert register.value_per_unit_series() == (
        ValuePoint(DEPOSIT, Decimal(1)), ValuePoint(SYNC, money("1.017886125000")))
    assert replay_units([]).value_per_unit_series() == ()


@pytest.mark.parametrize("event", [
    lambda: Subscription(OLD, DEPOSIT, money("0.00")),
    lambda: Payout(OLD, DEPOSIT, money("-1.00")),
    lambda: Subscription(OLD, DEPOSIT, money("10.001")),
    lambda: EquityPoint(DEPOSIT, money("10.001")),
])
def test_amounts_must_be_cents(event: object) -> None:
    with pytest.raises(InvalidData) as refused:
        event()  # type: ignore[operator]
    assert refused.value.code in {"AMOUNT_NOT_POSITIVE", "AMOUNT_PRECISION"}


# --- the rounding rules ---------------------------------------------------------------------


def test_units_issued_round_down_and_units_redeemed_round_up() -> None:
    three = money("3.000000000000")
    assert units_issued(money("100.00"), value_per_unit=three) == money("33.33333333")
    assert units_redeemed(money("100.00"), value_per_unit=three) == money("33.33333334")
    assert units_issued(money("90.00"), value_per_unit=three) == money("30.00000000")
    assert units_redeemed(money("90.00"), value_per_unit=three) == money("30.00000000")


def test_the_value_per_unit_rounds_half_even_to_twelve_places() -> None:
    units = money("2000000000000.00000000")
    assert value_per_unit(money("1.00"), units_outstanding=units) == money("0E-12")   # 0.5E-12
    assert value_per_unit(money("3.00"), units_outstanding=units) == money("2E-12")   # 1.5E-12
    assert value_per_unit(money("5.00"), units_outstanding=units) == money("2E-12")   # 2.5E-12
    assert value_per_unit(money("81430.89"), units_outstanding=money("80000")) == money(
        "1.017886125000")


def test_a_value_rounds_half_up_to_the_cent() -> None:
    assert value_of_units(money("1.00000000"), value_per_unit=money("0.005000000000")) == money(
        "0.01")
    assert value_of_units(money("3.00000000"), value_per_unit=money("0.001666666667")) == money(
        "0.01")
    # The exact product, 152,415,787,532.33197381105471840593, has 32 significant digits: more
    # than the default 28, which would round it before the cent is taken.
    assert value_of_units(money("123456789012.34567891"),
                          value_per_unit=money("1.234567890123")) == money("152415787532.33")


# --- the properties -------------------------------------------------------------------------

INVESTMENTS = ("INV-A-0001", "INV-B-0002", "INV-C-0003", "INV-D-0004")
CENTS = Decimal("0.01")


def pool_value(register: UnitRegister) -> Decimal:
    return value_of_units(register.units_outstanding, value_per_unit=register.value_per_unit)


@st.composite
def account_histories(draw: st.DrawFn) -> list[UnitEvent]:
    """A random history: subscriptions (some awaiting their deposit), payouts of a share of an
    investment's value, and closes that move the pool by -50 % to +50 %."""
    events: list[UnitEvent] = []
    day = date(2025, 1, 1)
    for _ in range(draw(st.integers(min_value=1, max_value=18))):
        day += timedelta(days=draw(st.integers(min_value=0, max_value=3)))
        register = replay_units(events)
        price = register.price_for_flows_on(day)
        holders = [key for key, h in register.holdings.items() if h.units > 0]
        action = draw(st.sampled_from(["subscribe", "subscribe", "pay", "close", "close"]))
        if action == "pay" and holders and price > 0:
            who = draw(st.sampled_from(holders))
            value = value_of_units(register.holdings[who].units, value_per_unit=price)
            share = draw(st.integers(min_value=1, max_value=100))
            amount = (value * share / 100).quantize(CENTS, rounding=ROUND_DOWN)
            if amount > 0:
                events.append(Payout(who, day, amount))
        elif action == "close":
            factor = Decimal(draw(st.integers(min_value=50, max_value=150))) / 100
            base = pool_value(replay_units(events, through=day)) or Decimal(
                draw(st.integers(min_value=0, max_value=10**8))) / 100
            events.append(EquityPoint(day, (base * factor).quantize(CENTS)))
        elif price > 0:
            cents = draw(st.integers(min_value=1, max_value=10**10))
            events.append(Subscription(draw(st.sampled_from(INVESTMENTS)), day,
                                       Decimal(cents) / 100,
                                       awaiting_deposit=draw(st.integers(0, 5)) == 0))
    return events


@settings(max_examples=150, deadline=None, database=None)
@given(account_histories())
def test_at_every_close_the_unit_values_add_up_to_the_equity(events: list[UnitEvent]) -> None:
    register = replay_units(events)
    assert sum(h.units for h in register.holdings.values()) == register.units_outstanding
    for price in register.prices:
        if price.units_outstanding == 0:
            continue
        held = [register.units_on(key, price.on) for key in register.holdings]
        held = [units for units in held if units > 0]
        assert sum(held) == price.units_outstanding
        values = sum(value_of_units(units, value_per_unit=price.value_per_unit)
                     for units in held)
        allowed = len(held) * Decimal("0.005") + price.units_outstanding * Decimal("0.5E-12")
        assert abs(values - price.equity) <= allowed


@settings(max_examples=150, deadline=None, database=None)
@given(account_histories(), st.data())
def test_a_flow_at_the_current_value_per_unit_moves_no_other_investments_value(
    events: list[UnitEvent], data: st.DataObject,
) -> None:
    last_day = max((event.on for event in events), default=date(2025, 1, 1))
    start = replay_units(events)
    equity = pool_value(start)
    if equity <= 0:
        return
    close_day, flow_day = last_day + timedelta(days=1), last_day + timedelta(days=2)
    history = [*events, EquityPoint(close_day, equity)]
    before = replay_units(history)
    mover = data.draw(st.sampled_from(INVESTMENTS))
    held = before.holdings.get(mover)
    if held is not None and held.units > 0 and data.draw(st.booleans()):
        value = value_of_units(held.units, value_per_unit=before.value_per_unit)
        amount = (value * data.draw(st.integers(1, 100)) / 100).quantize(CENTS,
                                                                            rounding=ROUND_DOWN)
        if amount <= 0:
            return
        flow: UnitEvent = Payout(mover, flow_day, amount)
        after_equity = before.equity - amount  # type: ignore[operator]
    else:
        amount = Decimal(data.draw(st.integers(min_value=1, max_value=10**10))) / 100
        flow = Subscription(mover, flow_day, amount)
        after_equity = before.equity + amount  # type: ignore[operator]
    others = {key: h for key, h in before.holdings.items() if key != mover}

    at_the_flow = replay_units([*history, flow])
    assert {key: at_the_flow.value_of(key) for key in others} == {
        key: before.value_of(key) for key in others}

    after = replay_units([*history, flow, EquityPoint(flow_day, after_equity)])
    pool = max(before.units_outstanding, after.units_outstanding)
    allowed = before.value_per_unit * Decimal("1E-8") + pool * Decimal("1E-12")
    if isinstance(flow, Payout) and after.holdings[mover].units == 0:
        allowed += Decimal("0.005")  # the whole value, rounded up, was paid out
    for key, holding in others.items():
        exact_move = holding.units * (after.value_per_unit - before.value_per_unit)
        assert abs(exact_move) <= allowed
        assert abs(after.value_of(key) - before.value_of(key)) <= CENTS
