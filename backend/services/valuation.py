"""Valuation: what each investment's units of its MT5 account are worth, from what is stored.

Nothing about units is stored apart from the result: every valuation replays the account's
whole stored history (`backend.money.accounts.account_book`: the investments it carries, the
deposit deals the sync stored, the daily equity points and the ledger's payouts), so a
valuation is idempotent and a correction anywhere in that history is taken into account by
the next one. The sync writes each investment's result (actual value, units, awaiting its
deposit) onto it, as its `current_value`.

An investment on no MT5 account has nothing to be paired with: it is valued at cost, as
awaiting its deposit. Every read here is a constant number of round trips, however many
investments and accounts are valued together.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal

from bson import ObjectId

from backend.funds import FundCatalog
from backend.models.investments import Investment, InvestmentStatus
from backend.models.ledger_entries import LedgerEntry, LedgerEntryKind
from backend.models.mt5_accounts import Mt5Account
from backend.models.mt5_deals import Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.models.schedule_items import ScheduleItem, ScheduleItemKind, ScheduleItemStatus
from backend.money.accounts import (
    AccountBook,
    AccountClose,
    AccountInvestment,
    DepositDeal,
    account_book,
)
from backend.money.flows import FlowKind, LedgerFlow
from backend.money.performance import ValuePoint
from backend.money.performance_share import PerformanceShare, performance_shares, valuation_for
from backend.money.schedule import PaymentSchedule, contract_dates
from backend.money.schedule import ScheduleItem as PlannedItem
from backend.money.units import ZERO_UNITS, UnitTransactionKind
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")

_FLOW_KINDS = {LedgerEntryKind.SUBSCRIPTION: FlowKind.SUBSCRIPTION,
               LedgerEntryKind.INTEREST_PAID: FlowKind.INTEREST_PAID,
               LedgerEntryKind.PERFORMANCE_SHARE_PAID: FlowKind.PERFORMANCE_SHARE_PAID,
               LedgerEntryKind.PRINCIPAL_RETURNED: FlowKind.PRINCIPAL_RETURNED,
               LedgerEntryKind.REVERSAL: FlowKind.REVERSAL}


def ledger_flows(entries: Iterable[LedgerEntry]) -> list[LedgerFlow]:
    """The entries as valuation reads them, keyed by the investment's business id. An entry of
    0.00 moves nothing and is left out; a reversal names the kind of the entry it undoes (the
    entries given must include it)."""
    listed = list(entries)
    kinds = {entry.id: entry.kind for entry in listed}
    flows = []
    for entry in listed:
        if entry.amount == 0:
            continue
        reverses = None
        if entry.kind is LedgerEntryKind.REVERSAL:
            undone = kinds.get(entry.reverses)
            if undone is None:
                logger.warning("ledger entry %s reverses an entry not read with it", entry.id)
                continue
            reverses = _FLOW_KINDS[undone]
        flows.append(LedgerFlow(
            investment_id=entry.investment_ref, kind=_FLOW_KINDS[entry.kind],
            on=entry.effective_date.astimezone(UTC).date(), amount=entry.amount,
            reverses=reverses, schedule_item=entry.schedule_number))
    return flows


@dataclass(frozen=True, slots=True)
class InvestmentValuation:
    """One investment's place in its account's pool, now."""

    investment: Investment
    account: Mt5Account | None
    actual_value: Decimal
    units: Decimal
    #: No deposit deal paired (or no account): valued at cost, holding no units.
    awaiting_deposit: bool
    #: The actual value at every close from its first subscription on.
    values: tuple[ValuePoint, ...]
    #: The value per unit in force now (1 before any close).
    value_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class AccountValuation:
    """An account's book and the investments it carries."""

    account: Mt5Account | None
    book: AccountBook
    investments: tuple[Investment, ...]
    #: The ledger flows of those investments.
    flows: tuple[LedgerFlow, ...] = ()

    def of(self, investment: Investment) -> InvestmentValuation:
        register = self.book.register
        key = investment.investment_id
        holding = register.holdings.get(key)
        values = register.value_series(key)
        deposited = investment.deposit_date.astimezone(UTC).date()
        issued = self.book.units_issued_on.get(key)
        if issued is not None and deposited < issued:
            # Its contract ran before its money was seen in the account: at cost until then,
            # less the principal returned meanwhile.
            cost = investment.principal_amount
            before = [ValuePoint(deposited, cost)]
            for flow in sorted(self.flows, key=lambda f: f.on):
                if flow.investment_id == key and flow.on < issued \
                        and flow.counts_as is FlowKind.PRINCIPAL_RETURNED:
                    cost = max(cost - flow.net_amount, ZERO)
                    before.append(ValuePoint(flow.on, cost))
            values = (*before, *values)
        return InvestmentValuation(
            investment=investment, account=self.account, actual_value=register.value_of(key),
            units=holding.units if holding is not None else ZERO_UNITS,
            awaiting_deposit=key in self.book.awaiting_deposit,
            values=values, value_per_unit=register.value_per_unit)


def _close(point: Mt5EquityPoint) -> AccountClose:
    return AccountClose(on=point.day.astimezone(UTC).date(), equity=point.equity,
                        recorded_at=point.recorded_at)


def _deposit(deal: Mt5Deal, account: Mt5Account) -> DepositDeal:
    return DepositDeal(key=(account.account_id, deal.ticket), ticket=deal.ticket,
                       time=deal.time, amount=deal.profit, currency=deal.currency)


def _as_account_investment(investment: Investment) -> AccountInvestment:
    return AccountInvestment(key=investment.investment_id, principal=investment.principal_amount,
                             currency=investment.currency, deposit_date=investment.deposit_date)


def carried_by(accounts: dict[ObjectId, Mt5Account], investments: Iterable[Investment]
               ) -> dict[ObjectId, list[Investment]]:
    """The investments each account carries: those naming it, and its first investment even
    while that one names no account yet."""
    owner_of_first: dict[ObjectId | None, ObjectId | None] = {
        a.investment_id: a.id for a in accounts.values() if a.investment_id is not None}
    of_account: dict[ObjectId, list[Investment]] = defaultdict(list)
    for investment in investments:
        account_id = investment.mt5_account_id or owner_of_first.get(investment.id)
        if account_id is not None and account_id in accounts:
            of_account[account_id].append(investment)
    return dict(of_account)


def group_books(accounts: dict[ObjectId, Mt5Account],
                carried: dict[ObjectId, list[Investment]], *, deals: Iterable[Mt5Deal],
                points: Iterable[Mt5EquityPoint], flows: Iterable[LedgerFlow],
                loose: Sequence[Investment] = ()) -> dict[ObjectId | None, list[AccountValuation]]:
    """Each account's book from its stored history (no database: the migration that first
    valued every investment by units calls it too); investments on no account under None."""
    deposits_of: dict[ObjectId, list[DepositDeal]] = defaultdict(list)
    for deal in deals:
        if deal.profit > 0 and deal.mt5_account_id in accounts:
            deposits_of[deal.mt5_account_id].append(_deposit(deal, accounts[deal.mt5_account_id]))
    closes_of: dict[ObjectId, list[AccountClose]] = defaultdict(list)
    for point in points:
        closes_of[point.mt5_account_id].append(_close(point))
    flows_of: dict[str, list[LedgerFlow]] = defaultdict(list)
    for flow in flows:
        flows_of[flow.investment_id].append(flow)
    result: dict[ObjectId | None, list[AccountValuation]] = defaultdict(list)
    for account_id, investments in carried.items():
        book = account_book([_as_account_investment(i) for i in investments],
                            deposits_of[account_id], closes_of[account_id],
                            [f for i in investments for f in flows_of[i.investment_id]])
        for note in book.set_aside:
            logger.debug("valuation of %s: %s", accounts[account_id].account_id, note)
        result[account_id].append(AccountValuation(
            accounts[account_id], book, tuple(investments),
            tuple(f for i in investments for f in flows_of[i.investment_id])))
    for investment in loose:
        book = account_book([_as_account_investment(investment)], [], [],
                            flows_of[investment.investment_id])
        result[None].append(AccountValuation(None, book, (investment,),
                                             tuple(flows_of[investment.investment_id])))
    return dict(result)


class ValuationService:
    def __init__(self, repos: Repositories, funds: FundCatalog, *,
                 clock: Clock = utcnow) -> None:
        self.funds = funds
        self.clock = clock
        self.investments = repos.investments
        self.accounts = repos.mt5_accounts
        self.deals = repos.deals
        self.equity = repos.equity
        self.ledger = repos.ledger
        self.schedule = repos.schedule

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    async def value_accounts(self, accounts: Sequence[Mt5Account], *,
                             loose: Sequence[Investment] = (),
                             ) -> dict[ObjectId | None, list[AccountValuation]]:
        """The book of each account, by account id; investments on no account (`loose`) each
        get a book of their own under None. Four round trips at most."""
        by_id = {account.id: account for account in accounts if account.id is not None}
        carried = await self.investments.on_accounts(
            list(by_id), first_investment_ids=[a.investment_id for a in by_id.values()
                                               if a.investment_id is not None])
        if not carried and not loose:
            return {}
        of_account = carried_by(by_id, carried)
        listed = [i for group in of_account.values() for i in group] + list(loose)
        entries = await self.ledger.of_investments([i.id for i in listed if i.id is not None])
        deals: list[Mt5Deal] = []
        points: list[Mt5EquityPoint] = []
        if of_account:
            deals = await self.deals.balance_deals(list(of_account))
            points = await self.equity.of_accounts(list(of_account))
        return group_books(by_id, of_account, deals=deals, points=points,
                           flows=ledger_flows(entries), loose=loose)

    async def _books_of(self, investments: Sequence[Investment]
                        ) -> dict[ObjectId, tuple[AccountValuation, Investment]]:
        """The book each investment's account replays into (its own while on no account)."""
        wanted = [i for i in investments if i.id is not None]
        if not wanted:
            return {}
        accounts = await self.accounts.carrying(
            account_ids=sorted({i.mt5_account_id for i in wanted if i.mt5_account_id}),
            investment_ids=[i.id for i in wanted if i.id is not None])
        on_account = {i.mt5_account_id for i in wanted} | {a.investment_id for a in accounts}
        loose = [i for i in wanted
                 if i.mt5_account_id is None and i.id not in on_account]
        books = await self.value_accounts(accounts, loose=loose)
        found: dict[ObjectId, tuple[AccountValuation, Investment]] = {}
        ids = {i.id for i in wanted}
        for valuations in books.values():
            for valuation in valuations:
                for investment in valuation.investments:
                    if investment.id in ids:
                        assert investment.id is not None
                        found[investment.id] = (valuation, investment)
        return found

    async def value_investments(self, investments: Sequence[Investment]
                                ) -> dict[ObjectId, InvestmentValuation]:
        """Each investment's valuation (replaying its whole account), by investment id."""
        return {investment_id: valuation.of(investment) for investment_id, (valuation, investment)
                in (await self._books_of(investments)).items()}

    async def performance_shares_of(self, investments: Sequence[Investment],
                                    items: Sequence[ScheduleItem]
                                    ) -> dict[ObjectId, PerformanceShare]:
        """The share each performance-share item pays, by item id, by the rule of
        `backend.money.performance_share`: the chain of the investment's performance-share
        dates is recomputed from the value per unit its units were bought at, so the mark of
        each date is derived from what is stored, never kept apart.

        A date gets a share only once it can be final: the investment held units at the close
        before it (its deposit paired in the account) and the account has a close on or after
        it (synced past it, so the close before it will not change). Other items are left out
        and stay unpriced."""
        books = await self._books_of(investments)
        shares: dict[ObjectId, PerformanceShare] = {}
        for investment_id, (valuation, investment) in books.items():
            register = valuation.book.register
            key = investment.investment_id
            purchase = next((t for t in register.transactions if t.investment_id == key
                             and t.kind is UnitTransactionKind.ISSUED), None)
            if purchase is None or not register.prices:
                continue
            synced_to = register.prices[-1].on
            dated = sorted(
                (item for item in items if item.investment_id == investment_id
                 and item.kind is ScheduleItemKind.PERFORMANCE_SHARE and item.id is not None),
                key=lambda item: item.due_date)
            valued: dict[date, ScheduleItem] = {}
            for item in dated:
                due = item.due_date.astimezone(UTC).date()
                if purchase.on < due <= synced_to:
                    valued[due] = item
            if not valued:
                continue
            terms = self.funds.terms_on(investment.fund_code,
                                        investment.deposit_date.astimezone(UTC).date())
            for share in performance_shares(
                    terms, purchase_value_per_unit=purchase.value_per_unit,
                    valuations=[valuation_for(register, key, due_date=due) for due in valued]):
                item_id = valued[share.due_date].id
                assert item_id is not None
                shares[item_id] = share
        return shares

    # schedules as the money package reads them ----------------------------------------------

    def payment_schedule(self, investment: Investment,
                         items: Sequence[ScheduleItem]) -> PaymentSchedule:
        """The stored schedule (cancelled items left out) with the contract's dates."""
        day = investment.deposit_date.astimezone(UTC).date()
        terms = self.funds.terms_on(investment.fund_code, day)
        return PaymentSchedule(
            fund_code=investment.fund_code, terms_version=investment.terms_version or
            terms.terms_version, currency=investment.currency,
            principal=investment.principal_amount, dates=contract_dates(terms, day),
            items=tuple(PlannedItem(number=item.number, kind=item.kind,
                                    due_date=item.due_date.astimezone(UTC).date(),
                                    amount=item.amount, currency=item.currency)
                        for item in items if item.status is not ScheduleItemStatus.CANCELLED))


#: Investments whose contract runs or ran: they have a schedule and ledger entries.
CONTRACT_STATUSES = frozenset(set(InvestmentStatus) - {InvestmentStatus.PENDING,
                                                       InvestmentStatus.CANCELLED})
