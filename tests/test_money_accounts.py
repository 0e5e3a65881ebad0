"""One MT5 account's book from what is stored: deposits paired by the reconciliation's rule, the
day a subscription counts from, payouts redeeming units, and what is set aside."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from backend.money.accounts import (
    AccountClose,
    AccountInvestment,
    DepositDeal,
    account_book,
    pair_deposits,
)
from backend.money.flows import FlowKind, LedgerFlow

OLD, TOP_UP = "INV-CLIENT1-80000", "INV-CLIENT1-20000"


def d(text: str) -> Decimal:
    return Decimal(text)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC).replace(
        hour=hour)


def investment(key: str, principal: str, deposit: str) -> AccountInvestment:
    return AccountInvestment(key=key, principal=d(principal), currency="USD",
                             deposit_date=at(deposit, 0))


def deal(ticket: int, amount: str, moment: datetime) -> DepositDeal:
    return DepositDeal(key=("MT5-1", ticket), ticket=ticket, time=moment, amount=d(amount),
                       currency="USD")


def close(day: str, equity: str, hour: int = 21) -> AccountClose:
    return AccountClose(on=date.fromisoformat(day), equity=d(equity), recorded_at=at(day, hour))


def test_deposits_pair_by_exact_amount_closest_to_the_deposit_date() -> None:
    investments = [investment(OLD, "80000.00", "2025-01-06"),
                   investment(TOP_UP, "80000.00", "2025-03-17")]
    deals = [deal(3, "80000.00", at("2025-03-18")), deal(1, "80000.00", at("2025-01-07")),
             deal(2, "79999.99", at("2025-01-06"))]
    paired = pair_deposits(investments, deals)
    assert {key: found.ticket for key, found in paired.items()} == {OLD: 1, TOP_UP: 3}
    assert pair_deposits(investments, deals[:1]) == {OLD: deals[0]}, "oldest investment first"


def test_the_issue_top_up_both_ways() -> None:
    investments = [investment(OLD, "80000.00", "2025-01-06"),
                   investment(TOP_UP, "20000.00", "2025-03-17")]
    before = [close("2025-03-14", "81430.89")]
    first = deal(1, "80000.00", at("2025-01-06"))
    waiting = account_book(investments, [first], [*before, close("2025-03-17", "81430.89")], [])
    assert waiting.register.values() == {OLD: d("81430.89"), TOP_UP: d("20000.00")}
    assert waiting.awaiting_deposit == frozenset({TOP_UP})
    arrived = account_book(investments, [first, deal(2, "20000.00", at("2025-03-17"))],
                           [*before, close("2025-03-17", "101430.89")], [])
    assert arrived.register.values() == {OLD: d("81430.89"), TOP_UP: d("20000.00")}
    assert arrived.awaiting_deposit == frozenset()
    assert arrived.units_issued_on == {OLD: date(2025, 1, 6), TOP_UP: date(2025, 3, 17)}


def test_a_deposit_after_the_days_stored_close_counts_from_the_next_day() -> None:
    # The 17th's close was recorded at 08:00, before the 09:00 deposit: it did not include it.
    investments = [investment(OLD, "80000.00", "2025-01-06"),
                   investment(TOP_UP, "20000.00", "2025-03-17")]
    book = account_book(investments,
                        [deal(1, "80000.00", at("2025-01-06")),
                         deal(2, "20000.00", at("2025-03-17", 9))],
                        [close("2025-03-14", "81430.89"), close("2025-03-17", "81837.20", 8),
                         close("2025-03-18", "101837.20")], [])
    assert book.units_issued_on[TOP_UP] == date(2025, 3, 18)
    # Bought at the 17th's close (81,837.20 / 80,000): the gain of the 17th stays with OLD.
    assert book.register.values() == {OLD: d("81837.20"), TOP_UP: d("20000.00")}


def test_payouts_redeem_units_and_a_reversal_buys_them_back() -> None:
    investments = [investment(OLD, "100000.00", "2025-01-06"),
                   investment(TOP_UP, "50000.00", "2025-01-06")]
    flows = [LedgerFlow(OLD, FlowKind.SUBSCRIPTION, date(2025, 1, 6), d("100000.00")),
             LedgerFlow(OLD, FlowKind.INTEREST_PAID, date(2025, 3, 3), d("1500.00"),
                        schedule_item=1),
             LedgerFlow(OLD, FlowKind.INTEREST_PAID, date(2025, 3, 4), d("1500.00"),
                        schedule_item=1),
             LedgerFlow(OLD, FlowKind.REVERSAL, date(2025, 3, 4), d("1500.00"),
                        reverses=FlowKind.INTEREST_PAID, schedule_item=1)]
    book = account_book(investments, [deal(1, "100000.00", at("2025-01-06")),
                                      deal(2, "50000.00", at("2025-01-06"))],
                        [close("2025-02-28", "157500.00"), close("2025-03-03", "156000.00")],
                        flows)
    # The paid-twice-and-reversed payout of the 4th nets to nothing: one redemption only.
    assert [(t.investment_id, t.kind.value) for t in book.register.transactions] == [
        (OLD, "issued"), (TOP_UP, "issued"), (OLD, "redeemed")]
    assert book.register.values() == {OLD: d("103500.00"), TOP_UP: d("52500.00")}


def test_what_cannot_be_replayed_is_set_aside_and_said() -> None:
    investments = [investment(OLD, "1000.00", "2025-01-06"),
                   investment(TOP_UP, "500.00", "2025-01-06")]
    flows = [
        # More principal back than the units are worth: every unit goes, no more.
        LedgerFlow(OLD, FlowKind.PRINCIPAL_RETURNED, date(2025, 2, 3), d("1000.00"),
                   schedule_item=2),
        # Interest paid to an investment whose deposit never reached the account.
        LedgerFlow(TOP_UP, FlowKind.INTEREST_PAID, date(2025, 2, 3), d("7.50"),
                   schedule_item=1),
        # A payout dated before the units were issued is taken on that day.
        LedgerFlow(OLD, FlowKind.INTEREST_PAID, date(2025, 1, 2), d("15.00"), schedule_item=1),
    ]
    book = account_book(investments, [deal(1, "1000.00", at("2025-01-06"))],
                        [close("2025-01-31", "900.00")], flows)
    assert book.register.holdings[OLD].units == 0
    assert book.register.values() == {OLD: d("0.00"), TOP_UP: d("500.00")}
    assert [t.on for t in book.register.transactions if t.kind.value == "redeemed"] == [
        date(2025, 1, 6), date(2025, 2, 3)]
    assert len(book.set_aside) == 2
    assert any("more than its value of 900.00" in note for note in book.set_aside)
    assert any(TOP_UP in note and "valued at cost" in note for note in book.set_aside)


def test_an_investment_awaiting_its_deposit_is_at_cost_less_principal_returned() -> None:
    book = account_book(
        [investment(TOP_UP, "500.00", "2025-01-06")], [], [],
        [LedgerFlow(TOP_UP, FlowKind.PRINCIPAL_RETURNED, date(2025, 2, 3), d("200.00"),
                    schedule_item=2)])
    assert book.register.values() == {TOP_UP: d("300.00")}
    everything_back = account_book(
        [investment(TOP_UP, "500.00", "2025-01-06")], [], [],
        [LedgerFlow(TOP_UP, FlowKind.PRINCIPAL_RETURNED, date(2025, 2, 3), d("500.00"),
                    schedule_item=2)])
    assert everything_back.register.value_of(TOP_UP) == d("0.00")
