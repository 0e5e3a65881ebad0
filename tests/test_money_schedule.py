"""Contract dates and payout schedules: every date and amount rule of the fund terms, pinned on
the fund manager's examples, and a property test over random deposits in every fund."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidData
from backend.funds import CENT, FundKind, FundTerms, default_catalog
from backend.money.calendar import add_months
from backend.money.schedule import (
    ItemStatus,
    LifecycleState,
    PaymentSchedule,
    ScheduleItemKind,
    build_schedule,
    interest_accrued_on,
    item_status_on,
    lifecycle_state_on,
    payout_amount,
    promised_interest_total,
)

ON = date(2025, 6, 1)


def terms(code: str) -> FundTerms:
    return default_catalog().terms_on(code, ON)


def schedule(code: str, principal: str, deposit: date) -> PaymentSchedule:
    return build_schedule(terms(code), principal=Decimal(principal), deposit_date=deposit)


def payout_dates(plan: PaymentSchedule) -> list[date]:
    return [item.due_date for item in plan.payouts]


# --- contract dates -------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "months", "expected"), [
    (date(2025, 1, 31), 1, date(2025, 2, 28)),
    (date(2025, 1, 31), 2, date(2025, 3, 31)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 2, 29), 48, date(2028, 2, 29)),
    (date(2025, 8, 31), 1, date(2025, 9, 30)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),
    (date(2025, 11, 30), 14, date(2027, 1, 30)),
    (date(2025, 3, 31), -1, date(2025, 2, 28)),
    (date(2025, 3, 31), 0, date(2025, 3, 31)),
    (date(1999, 12, 31), 2, date(2000, 2, 29)),
    (date(2099, 12, 31), 2, date(2100, 2, 28)),
])
def test_adding_calendar_months_clamps_to_the_last_day_of_the_month(
    start: date, months: int, expected: date,
) -> None:
    assert add_months(start, months) == expected


def test_contract_dates_are_never_chained_from_a_clamped_date() -> None:
    chained = add_months(add_months(date(2025, 1, 31), 1), 1)
    assert chained == date(2025, 3, 28)
    assert add_months(date(2025, 1, 31), 2) == date(2025, 3, 31)
    assert schedule("CORE", "10000.00", date(2025, 1, 31)).incubation_end_date == date(2025, 3, 31)


def test_a_date_outside_the_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        add_months(date(9999, 12, 31), 1)


# --- the fund manager's examples ------------------------------------------------------------


def test_core_100000_deposited_on_2025_01_31() -> None:
    plan = schedule("CORE", "100000.00", date(2025, 1, 31))
    assert plan.incubation_end_date == date(2025, 3, 31)
    assert plan.maturity_date == date(2026, 3, 31)
    assert payout_dates(plan) == [
        date(2025, 4, 30), date(2025, 5, 31), date(2025, 6, 30), date(2025, 7, 31),
        date(2025, 8, 31), date(2025, 9, 30), date(2025, 10, 31), date(2025, 11, 30),
        date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31),
    ]
    assert [(i.number, i.kind, i.amount, i.currency) for i in plan.payouts] == [
        (n, ScheduleItemKind.INTEREST, Decimal("1500.00"), "USD") for n in range(1, 13)]
    principal = plan.items[-1]
    assert (principal.number, principal.kind, principal.due_date, principal.amount) == (
        13, ScheduleItemKind.PRINCIPAL, date(2026, 3, 31), Decimal("100000.00"))
    assert plan.total_interest == Decimal("18000.00")
    assert (plan.fund_code, plan.terms_version, plan.currency) == ("CORE", 1, "USD")


def test_balance_50000_deposited_on_2025_11_30() -> None:
    plan = schedule("BALANCE", "50000.00", date(2025, 11, 30))
    assert plan.incubation_end_date == date(2026, 1, 30)
    assert [(i.number, i.kind, i.due_date, i.amount) for i in plan.items] == [
        (1, ScheduleItemKind.INTEREST, date(2026, 4, 30), Decimal("3750.00")),
        (2, ScheduleItemKind.INTEREST, date(2026, 7, 30), Decimal("3750.00")),
        (3, ScheduleItemKind.INTEREST, date(2026, 10, 30), Decimal("3750.00")),
        (4, ScheduleItemKind.INTEREST, date(2027, 1, 30), Decimal("3750.00")),
        (5, ScheduleItemKind.PRINCIPAL, date(2027, 1, 30), Decimal("50000.00")),
    ]
    assert plan.maturity_date == date(2027, 1, 30)


def test_a_leap_day_deposit_returns_to_the_29th_after_february() -> None:
    plan = schedule("CORE", "10000.00", date(2024, 2, 29))
    assert plan.incubation_end_date == date(2024, 4, 29)
    assert payout_dates(plan) == [
        date(2024, 5, 29), date(2024, 6, 29), date(2024, 7, 29), date(2024, 8, 29),
        date(2024, 9, 29), date(2024, 10, 29), date(2024, 11, 29), date(2024, 12, 29),
        date(2025, 1, 29), date(2025, 2, 28), date(2025, 3, 29), date(2025, 4, 29),
    ]
    assert plan.maturity_date == date(2025, 4, 29)


def test_a_deposit_on_the_31st_clamps_each_short_month_and_only_that_month() -> None:
    plan = schedule("BALANCE", "50000.00", date(2025, 8, 31))
    assert plan.incubation_end_date == date(2025, 10, 31)
    assert payout_dates(plan) == [
        date(2026, 1, 31), date(2026, 4, 30), date(2026, 7, 31), date(2026, 10, 31)]
    leap = schedule("CORE", "10000.00", date(2023, 12, 31))
    assert leap.incubation_end_date == date(2024, 2, 29)
    assert payout_dates(leap)[:2] == [date(2024, 3, 31), date(2024, 4, 30)]


def test_dynamic_pays_twice_a_year() -> None:
    plan = schedule("DYNAMIC", "250000.00", date(2025, 3, 15))
    assert plan.incubation_end_date == date(2025, 5, 15)
    assert [(i.kind, i.due_date, i.amount) for i in plan.items] == [
        (ScheduleItemKind.INTEREST, date(2025, 11, 15), Decimal("52500.00")),
        (ScheduleItemKind.INTEREST, date(2026, 5, 15), Decimal("52500.00")),
        (ScheduleItemKind.PRINCIPAL, date(2026, 5, 15), Decimal("250000.00")),
    ]


def test_unlimited_has_the_dates_of_its_performance_share_but_no_amounts() -> None:
    plan = schedule("UNLIMITED", "250000.00", date(2025, 1, 31))
    assert [(i.number, i.kind, i.due_date, i.amount) for i in plan.items] == [
        (1, ScheduleItemKind.PERFORMANCE_SHARE, date(2025, 6, 30), None),
        (2, ScheduleItemKind.PERFORMANCE_SHARE, date(2025, 9, 30), None),
        (3, ScheduleItemKind.PERFORMANCE_SHARE, date(2025, 12, 31), None),
        (4, ScheduleItemKind.PERFORMANCE_SHARE, date(2026, 3, 31), None),
        (5, ScheduleItemKind.PRINCIPAL, date(2026, 3, 31), Decimal("250000.00")),
    ]
    assert plan.total_interest == Decimal("0.00")
    assert promised_interest_total(terms("UNLIMITED"), Decimal("250000.00")) == Decimal("0.00")
    assert interest_accrued_on(plan, date(2026, 6, 1)) == Decimal("0.00")


# --- cents ----------------------------------------------------------------------------------


def test_each_payout_is_rounded_to_the_cent_and_the_total_is_the_sum_of_rounded_payouts() -> None:
    plan = schedule("CORE", "10000.01", date(2025, 1, 31))
    # 10,000.01 x 1.5 % = 150.00015: below half a cent, so 150.00.
    assert {item.amount for item in plan.payouts} == {Decimal("150.00")}
    assert plan.total_interest == Decimal("1800.00")


@pytest.mark.parametrize(("code", "principal", "exact", "payout"), [
    ("CORE", "10003.00", "150.045", "150.05"),
    ("BALANCE", "50000.60", "3750.045", "3750.05"),
])
def test_half_a_cent_rounds_up(code: str, principal: str, exact: str, payout: str) -> None:
    # Banker's rounding would give .04 here: the rule is half-up.
    assert Decimal(exact).quantize(CENT, rounding=ROUND_HALF_EVEN) != Decimal(payout)
    plan = schedule(code, principal, date(2025, 1, 31))
    assert {item.amount for item in plan.payouts} == {Decimal(payout)}
    assert plan.total_interest == Decimal(payout) * len(plan.payouts)


def test_a_principal_that_is_not_a_positive_amount_in_cents_is_refused() -> None:
    with pytest.raises(InvalidData) as precision:
        schedule("CORE", "10000.001", date(2025, 1, 31))
    assert precision.value.code == "AMOUNT_PRECISION"
    with pytest.raises(InvalidData) as negative:
        schedule("CORE", "-10000.00", date(2025, 1, 31))
    assert negative.value.code == "AMOUNT_NOT_POSITIVE"


# --- states on a day ------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "state"), [
    (date(2025, 1, 31), LifecycleState.INCUBATING),
    (date(2025, 3, 30), LifecycleState.INCUBATING),
    (date(2025, 3, 31), LifecycleState.ACTIVE),
    (date(2026, 3, 30), LifecycleState.ACTIVE),
    (date(2026, 3, 31), LifecycleState.MATURED),
    (date(2030, 1, 1), LifecycleState.MATURED),
])
def test_the_lifecycle_state_follows_the_contract_dates(day: date, state: LifecycleState) -> None:
    plan = schedule("CORE", "100000.00", date(2025, 1, 31))
    assert lifecycle_state_on(plan.dates, day) is state


def test_no_lifecycle_state_before_the_deposit() -> None:
    plan = schedule("CORE", "100000.00", date(2025, 1, 31))
    with pytest.raises(ValueError, match="before the deposit date"):
        lifecycle_state_on(plan.dates, date(2025, 1, 30))


def test_an_item_is_due_from_its_date() -> None:
    first = schedule("CORE", "100000.00", date(2025, 1, 31)).items[0]
    assert item_status_on(first, date(2025, 4, 29)) is ItemStatus.SCHEDULED
    assert item_status_on(first, date(2025, 4, 30)) is ItemStatus.DUE
    assert item_status_on(first, date(2025, 12, 1)) is ItemStatus.DUE


@pytest.mark.parametrize(("day", "accrued"), [
    (date(2025, 2, 15), "0.00"),       # incubating
    (date(2025, 3, 31), "0.00"),       # incubation ends: the first period starts
    (date(2025, 4, 15), "750.00"),     # 15 of 30 days of 1,500.00
    (date(2025, 4, 30), "1500.00"),    # the first payout's date
    (date(2025, 5, 15), "2225.81"),    # 1,500.00 + 1,500.00 x 15 / 31 = 725.806...
    (date(2026, 3, 30), "17951.61"),   # 16,500.00 + 1,500.00 x 30 / 31 = 1,451.612...
    (date(2026, 3, 31), "18000.00"),   # maturity: all of it
    (date(2027, 1, 1), "18000.00"),
])
def test_interest_accrues_by_payout_plus_the_running_period_pro_rata(
    day: date, accrued: str,
) -> None:
    plan = schedule("CORE", "100000.00", date(2025, 1, 31))
    assert interest_accrued_on(plan, day) == Decimal(accrued)


# --- the property ---------------------------------------------------------------------------


def every_version() -> list[FundTerms]:
    catalog = default_catalog()
    return [version for code in catalog.codes() for version in catalog.versions(code)]


@st.composite
def deposits(draw: st.DrawFn) -> tuple[FundTerms, Decimal, date]:
    fund = draw(st.sampled_from(every_version()))
    minimum_cents = int(fund.minimum * 100)
    cents = draw(st.integers(min_value=minimum_cents, max_value=minimum_cents * 10_000))
    day = draw(st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 12, 31)))
    return fund, Decimal(cents).scaleb(-2), day


@settings(max_examples=400, deadline=None, database=None)
@given(deposits())
def test_every_schedule_keeps_the_rules(deposit: tuple[FundTerms, Decimal, date]) -> None:
    fund, principal, day = deposit
    plan = build_schedule(fund, principal=principal, deposit_date=day)
    payouts = plan.payouts
    dates = [item.due_date for item in payouts]

    assert len(payouts) == fund.commitment_months // fund.payout_period_months
    assert all(plan.incubation_end_date < due <= plan.maturity_date for due in dates)
    assert all(earlier < later for earlier, later in zip(dates, dates[1:], strict=False))
    assert dates[-1] == plan.maturity_date
    assert [item.number for item in plan.items] == list(range(1, len(payouts) + 2))
    assert (plan.items[-1].kind, plan.items[-1].due_date, plan.items[-1].amount) == (
        ScheduleItemKind.PRINCIPAL, plan.maturity_date, principal)

    if fund.kind is FundKind.FIXED_INTEREST:
        assert fund.monthly_rate_percent is not None
        per_payout = (principal * fund.monthly_rate_percent * fund.payout_period_months
                      / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        closed_form = per_payout * (fund.commitment_months // fund.payout_period_months)
        assert plan.total_interest == closed_form
        assert plan.total_interest == promised_interest_total(fund, principal)
        assert {item.amount for item in payouts} == {payout_amount(fund, principal)}
        unrounded = principal * fund.monthly_rate_percent * fund.commitment_months / 100
        assert abs(plan.total_interest - unrounded) <= Decimal("0.005") * len(payouts)
        running = Decimal("0.00")
        for item in payouts:
            assert item.amount is not None
            running += item.amount
            assert interest_accrued_on(plan, item.due_date) == running
    else:
        assert all(item.amount is None for item in payouts)
        assert plan.total_interest == Decimal("0.00")
