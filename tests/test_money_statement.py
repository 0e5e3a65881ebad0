"""Statement figures: a client with a fixed-interest and a performance-share investment over a
month, figures worked out by hand; the reconciliation identity for every line, by property."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidData
from backend.funds import default_catalog
from backend.money.flows import FlowKind, LedgerFlow
from backend.money.performance import ValuePoint
from backend.money.performance_share import PerformanceShare, with_performance_shares
from backend.money.schedule import PaymentSchedule, ScheduleItemKind, build_schedule
from backend.money.statement import StatementInvestment, StatementLine, statement_figures

CORE_ID = "INV-CLIENT1-CORE"
UNLIMITED_ID = "INV-CLIENT1-UNLTD"
DEPOSIT = date(2025, 1, 31)
JUNE_1, JUNE_30 = date(2025, 6, 1), date(2025, 6, 30)


def d(text: str) -> Decimal:
    return Decimal(text)


def plan(code: str, principal: str, deposit: date = DEPOSIT) -> PaymentSchedule:
    return build_schedule(default_catalog().terms_on(code, deposit), principal=d(principal),
                          deposit_date=deposit)


def points(*pairs: tuple[date, str]) -> tuple[ValuePoint, ...]:
    return tuple(ValuePoint(day, d(value)) for day, value in pairs)


def client1() -> tuple[list[StatementInvestment], list[LedgerFlow]]:
    unlimited = plan("UNLIMITED", "250000.00")
    unlimited = with_performance_shares(unlimited, [PerformanceShare(
        due_date=JUNE_30, value_per_unit=d("1.25"), units=d("250000"), mark_before=d("1"),
        mark_after=d("1.25"), gain=d("62500.00"), amount=d("31250.00"))])
    investments = [
        StatementInvestment(CORE_ID, "CORE", plan("CORE", "100000.00"), points(
            (DEPOSIT, "100000.00"), (date(2025, 5, 31), "103200.00"), (JUNE_30, "104600.00"))),
        StatementInvestment(UNLIMITED_ID, "UNLIMITED", unlimited, points(
            (DEPOSIT, "250000.00"), (date(2025, 5, 31), "300000.00"),
            (date(2025, 6, 27), "312500.00"), (JUNE_30, "281250.00"))),
    ]
    flows = [
        LedgerFlow(CORE_ID, FlowKind.SUBSCRIPTION, DEPOSIT, d("100000.00")),
        LedgerFlow(CORE_ID, FlowKind.INTEREST_PAID, date(2025, 4, 30), d("1500.00"),
                   schedule_item=1),
        LedgerFlow(CORE_ID, FlowKind.INTEREST_PAID, date(2025, 5, 31), d("1500.00"),
                   schedule_item=2),
        # May's interest paid a second time by mistake, and reversed two days later.
        LedgerFlow(CORE_ID, FlowKind.INTEREST_PAID, date(2025, 6, 3), d("1500.00"),
                   schedule_item=2),
        LedgerFlow(CORE_ID, FlowKind.REVERSAL, date(2025, 6, 5), d("1500.00"),
                   reverses=FlowKind.INTEREST_PAID, schedule_item=2),
        # June's interest, due on the 30th, is paid on July 1st: after the period.
        LedgerFlow(CORE_ID, FlowKind.INTEREST_PAID, date(2025, 7, 1), d("1500.00"),
                   schedule_item=3),
        LedgerFlow(UNLIMITED_ID, FlowKind.SUBSCRIPTION, DEPOSIT, d("250000.00")),
        LedgerFlow(UNLIMITED_ID, FlowKind.PERFORMANCE_SHARE_PAID, JUNE_30, d("31250.00"),
                   schedule_item=1),
    ]
    return investments, flows


def money_figures(line: StatementLine) -> tuple[Decimal, ...]:
    return (line.opening_contractual_balance, line.subscriptions, line.payouts,
            line.interest_paid, line.performance_share_paid, line.principal_returned,
            line.interest_accrued, line.closing_contractual_balance,
            line.interest_accrued_unpaid, line.opening_actual_value, line.closing_actual_value)


def test_client1_in_june() -> None:
    figures = statement_figures(*client1(), start=JUNE_1, end=JUNE_30)
    core, unlimited = figures.investments
    assert figures.currency == "USD"

    # CORE: 100,000 owed at the opening (April's and May's interest paid); June's 1,500.00
    # accrues and is not paid by the 30th; the double payment and its reversal net to nothing.
    assert money_figures(core) == (
        d("100000.00"), d("0.00"), d("0.00"), d("0.00"), d("0.00"), d("0.00"),
        d("1500.00"), d("101500.00"), d("1500.00"), d("103200.00"), d("104600.00"))
    # UNLIMITED: the performance share fixed on the 30th (31,250.00) is paid the same day.
    assert money_figures(unlimited) == (
        d("250000.00"), d("0.00"), d("31250.00"), d("0.00"), d("31250.00"), d("0.00"),
        d("31250.00"), d("250000.00"), d("0.00"), d("300000.00"), d("281250.00"))
    assert money_figures(figures.total) == (
        d("350000.00"), d("0.00"), d("31250.00"), d("0.00"), d("31250.00"), d("0.00"),
        d("32750.00"), d("351500.00"), d("1500.00"), d("403200.00"), d("385850.00"))
    assert all(line.reconciles for line in (core, unlimited, figures.total))


def test_client1s_returns_in_june() -> None:
    figures = statement_figures(*client1(), start=JUNE_1, end=JUNE_30)
    core, unlimited = figures.investments
    # CORE: 103,200.00 -> 104,600.00, the June flows netting to nothing: 1,400 / 103,200.
    assert core.time_weighted_return == d("0.0135658915")
    # UNLIMITED: 300,000 -> 312,500 by the 27th, then 281,250 after 31,250 paid out: +0 %.
    assert unlimited.time_weighted_return == d("0.0416666667")
    # The client: 403,200 -> 415,700 by the 27th; then 385,850 on (415,700 - 31,250).
    # (1 + 12,500 / 403,200) x (1 + 1,400 / 384,450) - 1, each factor to 10 places.
    assert figures.total.time_weighted_return == d("0.0347564458")
    # UNLIMITED's money: 300,000 in at the opening, 312,500 back 30 days later, in all.
    annual = (312500 / 300000) ** (365 / 30) - 1
    assert unlimited.money_weighted_return is not None
    assert abs(float(unlimited.money_weighted_return) - annual) < 1e-8


def test_client1s_next_and_overdue_payouts() -> None:
    figures = statement_figures(*client1(), start=JUNE_1, end=JUNE_30)
    assert [(p.investment_id, p.number, p.due_date, p.amount) for p in figures.overdue_payouts] == [
        (CORE_ID, 3, JUNE_30, d("1500.00"))]
    upcoming = [(p.due_date, p.investment_id, p.number, p.kind, p.amount)
                for p in figures.next_payouts]
    assert upcoming[:3] == [
        (date(2025, 7, 31), CORE_ID, 4, ScheduleItemKind.INTEREST, d("1500.00")),
        (date(2025, 8, 31), CORE_ID, 5, ScheduleItemKind.INTEREST, d("1500.00")),
        (date(2025, 9, 30), CORE_ID, 6, ScheduleItemKind.INTEREST, d("1500.00")),
    ]
    assert (date(2025, 9, 30), UNLIMITED_ID, 2, ScheduleItemKind.PERFORMANCE_SHARE,
            None) in upcoming
    assert upcoming[-4:] == [
        (date(2026, 3, 31), CORE_ID, 12, ScheduleItemKind.INTEREST, d("1500.00")),
        (date(2026, 3, 31), CORE_ID, 13, ScheduleItemKind.PRINCIPAL, d("100000.00")),
        (date(2026, 3, 31), UNLIMITED_ID, 4, ScheduleItemKind.PERFORMANCE_SHARE, None),
        (date(2026, 3, 31), UNLIMITED_ID, 5, ScheduleItemKind.PRINCIPAL, d("250000.00")),
    ]
    assert len(upcoming) == 10 + 4
    # Two months after June 30th is August 30th: August 31st's payout is not yet listed.
    shorter = statement_figures(*client1(), start=JUNE_1, end=JUNE_30, horizon_months=2)
    assert [(p.investment_id, p.number) for p in shorter.next_payouts] == [(CORE_ID, 4)]


def test_a_period_that_starts_mid_month_accrues_pro_rata() -> None:
    investments, flows = client1()
    figures = statement_figures(investments[:1], flows[:3], start=date(2025, 5, 16),
                                end=date(2025, 6, 14))
    line = figures.total
    # Opening May 15th: 1,500.00 paid, 2,225.81 accrued. Closing June 14th: 3,000.00 paid,
    # 3,000.00 + 1,500.00 x 14 / 30 = 3,700.00 accrued. May 31st's payout in between.
    assert (line.opening_contractual_balance, line.interest_accrued, line.payouts,
            line.closing_contractual_balance, line.interest_accrued_unpaid) == (
        d("100725.81"), d("1474.19"), d("1500.00"), d("100700.00"), d("700.00"))
    assert line.reconciles


def test_a_statement_refuses_what_it_cannot_add_up() -> None:
    investments, flows = client1()
    with pytest.raises(InvalidData) as backwards:
        statement_figures(investments, flows, start=JUNE_30, end=JUNE_1)
    assert backwards.value.code == "PERIOD_INVALID"
    with pytest.raises(InvalidData) as stranger:
        statement_figures(investments[:1], flows, start=JUNE_1, end=JUNE_30)
    assert stranger.value.code == "UNKNOWN_INVESTMENT"
    euro = build_schedule(default_catalog().terms_on("CORE", DEPOSIT), principal=d("1.00"),
                          deposit_date=DEPOSIT)
    euro = dataclasses.replace(euro, currency="EUR")
    with pytest.raises(InvalidData) as mixed:
        statement_figures([*investments, StatementInvestment("INV-EUR-0001", "CORE", euro, ())],
                          flows, start=JUNE_1, end=JUNE_30)
    assert mixed.value.code == "CURRENCY_MISMATCH"


# --- the identity, by property --------------------------------------------------------------

FUNDS = {"CORE": 10_000, "BALANCE": 50_000, "DYNAMIC": 250_000, "UNLIMITED": 250_000}
PAYOUT_KINDS = [FlowKind.INTEREST_PAID, FlowKind.PERFORMANCE_SHARE_PAID,
                FlowKind.PRINCIPAL_RETURNED]


@st.composite
def clients(draw: st.DrawFn) -> tuple[list[StatementInvestment], list[LedgerFlow]]:
    investments: list[StatementInvestment] = []
    flows: list[LedgerFlow] = []
    for number in range(draw(st.integers(min_value=1, max_value=3))):
        code = draw(st.sampled_from(sorted(FUNDS)))
        cents = draw(st.integers(min_value=FUNDS[code] * 100, max_value=FUNDS[code] * 1000))
        deposit = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2025, 12, 31)))
        schedule = plan(code, str(Decimal(cents) / 100), deposit)
        shares = [PerformanceShare(
            due_date=item.due_date, value_per_unit=d("1"), units=d("1"), mark_before=d("1"),
            mark_after=d("1"), gain=d("0.00"),
            amount=Decimal(draw(st.integers(min_value=0, max_value=cents // 10))) / 100)
            for item in schedule.payouts if item.kind is ScheduleItemKind.PERFORMANCE_SHARE]
        schedule = with_performance_shares(schedule, shares)
        key = f"INV-PROP-{number:04d}"
        flows.append(LedgerFlow(key, FlowKind.SUBSCRIPTION, deposit, schedule.principal))
        for item in schedule.items:
            if item.amount and draw(st.booleans()):
                kind = {ScheduleItemKind.INTEREST: FlowKind.INTEREST_PAID,
                        ScheduleItemKind.PERFORMANCE_SHARE: FlowKind.PERFORMANCE_SHARE_PAID,
                        ScheduleItemKind.PRINCIPAL: FlowKind.PRINCIPAL_RETURNED}[item.kind]
                paid_on = item.due_date + timedelta(days=draw(st.integers(0, 20)))
                flows.append(LedgerFlow(key, kind, paid_on, item.amount,
                                        schedule_item=item.number))
                if draw(st.integers(0, 4)) == 0:
                    flows.append(LedgerFlow(key, FlowKind.REVERSAL,
                                            paid_on + timedelta(days=draw(st.integers(0, 5))),
                                            item.amount, reverses=kind,
                                            schedule_item=item.number))
        for _ in range(draw(st.integers(0, 3))):
            flows.append(LedgerFlow(
                key, draw(st.sampled_from([FlowKind.SUBSCRIPTION, *PAYOUT_KINDS])),
                draw(st.dates(min_value=deposit, max_value=date(2027, 12, 31))),
                Decimal(draw(st.integers(min_value=1, max_value=cents))) / 100))
        values = tuple(sorted(
            (ValuePoint(day, Decimal(draw(st.integers(0, cents * 2))) / 100) for day in draw(
                st.sets(st.dates(min_value=deposit, max_value=date(2027, 12, 31)),
                        max_size=6))), key=lambda point: point.on))
        investments.append(StatementInvestment(key, code, schedule, values))
    return investments, flows


MONEY_FIELDS = ("opening_contractual_balance", "subscriptions", "payouts", "interest_paid",
                "performance_share_paid", "principal_returned", "interest_accrued",
                "closing_contractual_balance", "interest_accrued_unpaid",
                "opening_actual_value", "closing_actual_value")


@settings(max_examples=200, deadline=None, database=None)
@given(clients(), st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
       st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_every_statement_reconciles_to_the_cent_and_periods_chain(
    client: tuple[list[StatementInvestment], list[LedgerFlow]], start: date,
    first_days: int, second_days: int,
) -> None:
    investments, flows = client
    middle = start + timedelta(days=first_days)
    end = middle + timedelta(days=second_days + 1)
    first = statement_figures(investments, flows, start=start, end=middle)
    second = statement_figures(investments, flows, start=middle + timedelta(days=1), end=end)
    whole = statement_figures(investments, flows, start=start, end=end)
    for figures in (first, second, whole):
        for line in (*figures.investments, figures.total):
            assert line.reconciles
            assert all(getattr(line, name) == getattr(line, name).quantize(d("0.01"))
                       for name in MONEY_FIELDS)
        for name in MONEY_FIELDS:
            assert getattr(figures.total, name) == sum(
                (getattr(line, name) for line in figures.investments), d("0.00"))
    # One period's closing is the next one's opening; two periods add up to the whole.
    assert second.total.opening_contractual_balance == first.total.closing_contractual_balance
    assert second.total.opening_actual_value == first.total.closing_actual_value
    for name in ("subscriptions", "payouts", "principal_returned", "interest_accrued"):
        assert getattr(whole.total, name) == (getattr(first.total, name)
                                              + getattr(second.total, name))
