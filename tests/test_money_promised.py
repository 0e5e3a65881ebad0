"""Ledger flows as valuation reads them, and the contractual value beside the actual one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backend.errors import InvalidData
from backend.funds import default_catalog
from backend.money.flows import FlowKind, LedgerFlow, flow_totals, paid_schedule_items
from backend.money.performance import CashFlow
from backend.money.performance_share import PerformanceShare, with_performance_shares
from backend.money.promised import (
    PromisedVersusActual,
    contractual_value_on,
    earned_on,
    promised_versus_actual,
)
from backend.money.schedule import PaymentSchedule, build_schedule

CORE_ID = "INV-CLIENT1-CORE"
DEPOSIT = date(2025, 1, 31)


def d(text: str) -> Decimal:
    return Decimal(text)


def core_plan() -> PaymentSchedule:
    return build_schedule(default_catalog().terms_on("CORE", DEPOSIT),
                          principal=d("100000.00"), deposit_date=DEPOSIT)


def flow(kind: FlowKind, day: date, amount: str, **extra: object) -> LedgerFlow:
    return LedgerFlow(CORE_ID, kind, day, d(amount), **extra)  # type: ignore[arg-type]


SUBSCRIBED = flow(FlowKind.SUBSCRIPTION, DEPOSIT, "100000.00")
FIRST_INTEREST = flow(FlowKind.INTEREST_PAID, date(2025, 4, 30), "1500.00", schedule_item=1)


# --- ledger flows ---------------------------------------------------------------------------


def test_a_reversal_nets_out_the_entry_it_undoes_on_its_own_date() -> None:
    paid_twice = [SUBSCRIBED, FIRST_INTEREST,
                  flow(FlowKind.INTEREST_PAID, date(2025, 4, 30), "1500.00", schedule_item=1),
                  flow(FlowKind.REVERSAL, date(2025, 5, 2), "1500.00",
                       reverses=FlowKind.INTEREST_PAID, schedule_item=1)]
    assert flow_totals(paid_twice, through=date(2025, 5, 1)).interest_paid == d("3000.00")
    assert flow_totals(paid_twice).interest_paid == d("1500.00")
    assert flow_totals(paid_twice, after=date(2025, 4, 30)).interest_paid == d("-1500.00")
    assert paid_schedule_items(paid_twice) == {1}
    assert paid_schedule_items([FIRST_INTEREST, paid_twice[-1]]) == frozenset()


def test_from_the_clients_side_money_in_is_negative() -> None:
    assert SUBSCRIBED.cash_flow() == CashFlow(DEPOSIT, d("-100000.00"))
    assert FIRST_INTEREST.cash_flow() == CashFlow(date(2025, 4, 30), d("1500.00"))
    bounced = flow(FlowKind.REVERSAL, date(2025, 2, 3), "100000.00",
                   reverses=FlowKind.SUBSCRIPTION)
    assert bounced.cash_flow() == CashFlow(date(2025, 2, 3), d("100000.00"))


@pytest.mark.parametrize(("kind", "reverses"), [
    (FlowKind.REVERSAL, None),
    (FlowKind.INTEREST_PAID, FlowKind.SUBSCRIPTION),
    (FlowKind.REVERSAL, FlowKind.REVERSAL),
])
def test_only_a_reversal_names_what_it_reverses(kind: FlowKind,
                                                 reverses: FlowKind | None) -> None:
    with pytest.raises(InvalidData) as refused:
        flow(kind, DEPOSIT, "1.00", reverses=reverses)
    assert refused.value.code == "REVERSAL_INVALID"


def test_a_flow_is_a_positive_amount_in_cents() -> None:
    with pytest.raises(InvalidData) as negative:
        flow(FlowKind.SUBSCRIPTION, DEPOSIT, "-1.00")
    assert negative.value.code == "AMOUNT_NOT_POSITIVE"
    with pytest.raises(InvalidData) as precision:
        flow(FlowKind.SUBSCRIPTION, DEPOSIT, "1.001")
    assert precision.value.code == "AMOUNT_PRECISION"


# --- the contractual value ------------------------------------------------------------------


def test_while_incubating_the_contract_is_worth_its_principal() -> None:
    seen = promised_versus_actual(core_plan(), [SUBSCRIBED], actual_value=d("101200.00"),
                                  on=date(2025, 3, 15))
    assert (seen.contractual_value, seen.gap, seen.gap_percent) == (
        d("100000.00"), d("1200.00"), d("1.20"))


def test_the_contract_accrues_interest_and_drops_by_what_was_paid() -> None:
    mid_may = date(2025, 5, 15)
    # 1,500.00 paid on April 30th; May's 1,500.00 accrued 15 of 31 days: 725.81.
    seen = promised_versus_actual(core_plan(), [SUBSCRIBED, FIRST_INTEREST],
                                  actual_value=d("99000.00"), on=mid_may)
    assert (seen.contractual_value, seen.gap, seen.gap_percent) == (
        d("100725.81"), d("-1725.81"), d("-1.71"))
    # Unpaid, the April payout is still owed.
    assert contractual_value_on(core_plan(), [SUBSCRIBED], on=mid_may) == d("102225.81")
    # Nothing is owed before the money came in.
    assert contractual_value_on(core_plan(), [SUBSCRIBED], on=date(2025, 1, 30)) == d("0.00")


def test_once_everything_is_paid_nothing_is_owed() -> None:
    plan = core_plan()
    paid = [SUBSCRIBED, *(flow(FlowKind.INTEREST_PAID, item.due_date, "1500.00",
                               schedule_item=item.number) for item in plan.payouts),
            flow(FlowKind.PRINCIPAL_RETURNED, plan.maturity_date, "100000.00",
                 schedule_item=plan.items[-1].number)]
    seen = promised_versus_actual(plan, paid, actual_value=d("312.40"), on=date(2026, 4, 1))
    assert (seen.contractual_value, seen.gap, seen.gap_percent) == (
        d("0.00"), d("312.40"), None)


def test_a_performance_share_is_owed_from_its_date_until_paid() -> None:
    plan = build_schedule(default_catalog().terms_on("UNLIMITED", DEPOSIT),
                          principal=d("250000.00"), deposit_date=DEPOSIT)
    first = plan.payouts[0]
    filled = with_performance_shares(plan, [PerformanceShare(
        due_date=first.due_date, value_per_unit=d("1.25"), units=d("250000"),
        mark_before=d("1"), mark_after=d("1.25"), gain=d("62500.00"), amount=d("31250.00"))])
    subscribed = LedgerFlow("INV-CLIENT3-UNLTD", FlowKind.SUBSCRIPTION, DEPOSIT,
                            d("250000.00"))
    assert earned_on(filled, first.due_date) == d("31250.00")
    assert contractual_value_on(filled, [subscribed], on=first.due_date) == d("281250.00")
    paid = LedgerFlow("INV-CLIENT3-UNLTD", FlowKind.PERFORMANCE_SHARE_PAID, first.due_date,
                      d("31250.00"), schedule_item=first.number)
    assert contractual_value_on(filled, [subscribed, paid], on=first.due_date) == d(
        "250000.00")


def test_a_total_adds_the_figures_and_recomputes_the_percent() -> None:
    day = date(2025, 5, 15)
    total = PromisedVersusActual.total([
        PromisedVersusActual.of(on=day, contractual_value=d("100000.00"),
                                actual_value=d("103000.00")),
        PromisedVersusActual.of(on=day, contractual_value=d("50000.00"),
                                actual_value=d("48500.00")),
    ], on=day)
    assert (total.contractual_value, total.actual_value, total.gap, total.gap_percent) == (
        d("150000.00"), d("151500.00"), d("1500.00"), d("1.00"))
    with pytest.raises(ValueError, match="one day"):
        PromisedVersusActual.total([total], on=date(2025, 5, 16))
