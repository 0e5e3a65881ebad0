"""What each fund holds against what it owes.

Per fund (every fund of the catalog, and any other fund code an investment carries):

- assets under management: the principal of its investments whose money is in the fund
  (incubating, active, matured);
- actual equity: the latest equity of its MT5 accounts (the last sync's snapshot; accounts
  never synced are counted apart), and the actual value of its live investments by units;
- units outstanding (the sum over its accounts) and the value per unit: each account is a pool
  of its own, so the fund's figure is the units' value over their number (a weighted mean),
  each account's own given beside it;
- obligations: what the schedules say is owed today, the sum of its investments' contractual
  values (principal owed + interest accrued to date, incubation honoured - interest paid);
- coverage: actual equity / obligations, to 4 places (None when nothing is owed or no account
  was ever synced); below 1 the accounts hold less than the fund owes;
- the payouts of the next 12 months by month (items still owed, due after today), and those
  overdue (due before today, unpaid);
- the time-weighted return since inception: the accounts' pools chained as one portfolio
  (their equity at each close, the units issued and redeemed as the flows), by
  `performance.portfolio_time_weighted_return`.

Every figure comes from a constant number of round trips, whatever the number of investments.
`/health` turns degraded on an overdue payout or a coverage below 1 (`funds_health_check`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from bson import ObjectId

from backend.db.connection import DegradedCheck
from backend.db.types import Database
from backend.funds import FundCatalog, default_catalog
from backend.models.investments import INVESTED_STATUSES, Investment
from backend.models.mt5_accounts import Mt5Account
from backend.models.schedule_items import OPEN_ITEM_STATUSES, ScheduleItem
from backend.money.calendar import add_months
from backend.money.flows import LedgerFlow
from backend.money.performance import (
    CashFlow,
    ValuePoint,
    combine_value_series,
    portfolio_time_weighted_return,
)
from backend.money.promised import contractual_value_on
from backend.money.units import UnitTransactionKind, value_of_units
from backend.repositories.base import Clock, utcnow
from backend.repositories.investments import LIVE_IN_FUND
from backend.repositories.registry import Repositories
from backend.security.crypto import FieldCipher
from backend.services.valuation import (
    CONTRACT_STATUSES,
    AccountValuation,
    ValuationService,
    carried_by,
    group_books,
    ledger_flows,
)
from backend.settings import Settings

ZERO = Decimal("0.00")
_RATIO = Decimal("0.0001")
_VPU = Decimal(1).scaleb(-12)
#: Beyond this many, a health reason names the first ones and how many more there are.
LISTED = 10


@dataclass(frozen=True, slots=True)
class AccountPool:
    account_id: str
    equity: Decimal | None
    units_outstanding: Decimal
    value_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class PayoutMonth:
    month: date
    amount: Decimal
    items: int
    #: Performance shares whose amount is not known before their date.
    unpriced_items: int


@dataclass(slots=True)
class FundOverview:
    fund_code: str
    currency: str
    investments: int = 0
    assets_under_management: Decimal = ZERO
    actual_equity: Decimal = ZERO
    accounts_synced: int = 0
    accounts_never_synced: int = 0
    actual_value: Decimal = ZERO
    awaiting_deposit: Decimal = ZERO
    units_outstanding: Decimal = Decimal(0)
    value_per_unit: Decimal | None = None
    obligations: Decimal = ZERO
    coverage_ratio: Decimal | None = None
    overdue_amount: Decimal = ZERO
    overdue_items: int = 0
    #: The overdue items, oldest first: "INV-... #3 due 2026-10-31".
    overdue: list[str] = field(default_factory=list)
    next_payouts: list[PayoutMonth] = field(default_factory=list)
    time_weighted_return: Decimal | None = None
    accounts: list[AccountPool] = field(default_factory=list)

    @property
    def under_covered(self) -> bool:
        return self.coverage_ratio is not None and self.coverage_ratio < 1


@dataclass(slots=True)
class _Funds:
    investments: list[Investment]
    accounts: dict[ObjectId, Mt5Account]
    items: list[ScheduleItem]
    flows: list[LedgerFlow]


class FundOverviewService:
    def __init__(self, repos: Repositories, valuation: ValuationService, funds: FundCatalog, *,
                 clock: Clock = utcnow) -> None:
        self.valuation = valuation
        self.funds = funds
        self.clock = clock
        self.investments = repos.investments
        self.accounts = repos.mt5_accounts
        self.schedule = repos.schedule
        self.ledger = repos.ledger
        self.deals = repos.deals
        self.equity = repos.equity

    async def _read(self) -> _Funds:
        investments = [i for i in await self.investments.in_funds() if i.id is not None]
        accounts = {a.id: a for a in await self.accounts.in_funds() if a.id is not None}
        ids = [i.id for i in investments if i.id is not None]
        items = await self.schedule.of_investments(ids)
        entries = await self.ledger.of_investments(ids)
        return _Funds(investments, accounts, items, ledger_flows(entries))

    def _base(self, data: _Funds, today: date) -> dict[str, FundOverview]:
        """Principal, equity, obligations, coverage and payouts: no unit replay needed."""
        overviews = {terms.code: FundOverview(terms.code, terms.currency)
                     for terms in self.funds.all()}
        for investment in data.investments:
            overviews.setdefault(investment.fund_code,
                                 FundOverview(investment.fund_code, investment.currency))
        for account in data.accounts.values():
            overview = overviews.setdefault(account.fund_code,
                                            FundOverview(account.fund_code, account.currency))
            if account.equity is None:
                overview.accounts_never_synced += 1
            else:
                overview.accounts_synced += 1
                overview.actual_equity += max(account.equity, ZERO)
        items_of: dict[ObjectId, list[ScheduleItem]] = defaultdict(list)
        for item in data.items:
            items_of[item.investment_id].append(item)
        flows_of: dict[str, list[LedgerFlow]] = defaultdict(list)
        for flow in data.flows:
            flows_of[flow.investment_id].append(flow)
        for investment in data.investments:
            overview = overviews[investment.fund_code]
            if investment.status in INVESTED_STATUSES:
                overview.investments += 1
                overview.assets_under_management += investment.principal_amount
            if investment.status in CONTRACT_STATUSES:
                assert investment.id is not None
                schedule = self.valuation.payment_schedule(investment, items_of[investment.id])
                overview.obligations += contractual_value_on(
                    schedule, flows_of[investment.investment_id], on=today)
        horizon = add_months(today, 12)
        months: dict[tuple[str, date], list[ScheduleItem]] = defaultdict(list)
        for item in data.items:
            if item.status not in OPEN_ITEM_STATUSES:
                continue
            due = item.due_date.date()
            overview = overviews[item.fund_code]
            if due < today:
                overview.overdue_items += 1
                overview.overdue_amount += item.amount or ZERO
                overview.overdue.append(f"{item.investment_ref} #{item.number} due "
                                        f"{due.isoformat()}")
            elif today < due <= horizon:
                months[(item.fund_code, due.replace(day=1))].append(item)
        for (fund_code, month), group in sorted(months.items()):
            overviews[fund_code].next_payouts.append(PayoutMonth(
                month=month, amount=sum((i.amount or ZERO for i in group), ZERO),
                items=len(group), unpriced_items=sum(1 for i in group if i.amount is None)))
        for overview in overviews.values():
            overview.overdue.sort(key=lambda text: (text.rsplit(" ", 1)[1], text))
            if overview.obligations > 0 and overview.accounts_synced:
                overview.coverage_ratio = (overview.actual_equity / overview.obligations
                                           ).quantize(_RATIO, rounding=ROUND_HALF_EVEN)
        return overviews

    async def coverage(self) -> list[FundOverview]:
        """Obligations, coverage and overdue payouts only (what `/health` needs)."""
        today = self.valuation.today()
        return list(self._base(await self._read(), today).values())

    async def overview(self) -> list[FundOverview]:
        """Every fund's figures (the module docstring's list)."""
        today = self.valuation.today()
        data = await self._read()
        overviews = self._base(data, today)
        carried = carried_by(data.accounts, data.investments)
        account_ids = list(carried)
        deals = await self.deals.balance_deals(account_ids) if account_ids else []
        points = await self.equity.of_accounts(account_ids) if account_ids else []
        books = group_books(data.accounts, carried, deals=deals, points=points,
                            flows=data.flows)
        pools: dict[str, list[AccountValuation]] = defaultdict(list)
        for account_id, valuations in books.items():
            if account_id is None:
                continue
            for valuation in valuations:
                assert valuation.account is not None
                pools[valuation.account.fund_code].append(valuation)
        for fund_code, valuations in pools.items():
            _add_pools(overviews[fund_code], valuations)
        return sorted(overviews.values(), key=lambda o: o.fund_code)


def _add_pools(overview: FundOverview, valuations: Sequence[AccountValuation]) -> None:
    unit_value = ZERO
    series: list[tuple[ValuePoint, ...]] = []
    flows: list[CashFlow] = []
    inception: date | None = None
    for valuation in valuations:
        assert valuation.account is not None
        register = valuation.book.register
        overview.accounts.append(AccountPool(
            account_id=valuation.account.account_id, equity=valuation.account.equity,
            units_outstanding=register.units_outstanding,
            value_per_unit=register.value_per_unit))
        overview.units_outstanding += register.units_outstanding
        unit_value += value_of_units(register.units_outstanding,
                                     value_per_unit=register.value_per_unit)
        for investment in valuation.investments:
            if investment.status in LIVE_IN_FUND:
                valued = valuation.of(investment)
                overview.actual_value += valued.actual_value
                if valued.awaiting_deposit:
                    overview.awaiting_deposit += valued.actual_value
        if register.inception is None:
            continue
        inception = min(inception or register.inception, register.inception)
        series.append(tuple(ValuePoint(p.on, p.equity) for p in register.prices
                            if p.on >= register.inception and p.units_outstanding > 0))
        flows.extend(CashFlow(on=t.on, amount=-t.amount if t.kind is UnitTransactionKind.ISSUED
                              else t.amount) for t in register.transactions)
    if overview.units_outstanding > 0:
        overview.value_per_unit = (unit_value / overview.units_outstanding).quantize(
            _VPU, rounding=ROUND_HALF_EVEN)
    if inception is not None:
        values = combine_value_series(series)
        if values:
            overview.time_weighted_return = portfolio_time_weighted_return(
                values, flows, start=inception - timedelta(days=1), end=values[-1].on)


def funds_health_check(settings: Settings, *, clock: Clock = utcnow,
                       funds: FundCatalog | None = None) -> DegradedCheck:
    """`/health` is degraded while a payout is overdue or a fund's coverage is below 1."""
    cipher = FieldCipher.from_settings(settings)
    catalog = funds or default_catalog()

    async def fund_obligations(db: Database) -> list[str]:
        repos = Repositories(db, cipher=cipher, clock=clock)
        service = FundOverviewService(repos, ValuationService(repos, catalog, clock=clock),
                                      catalog, clock=clock)
        reasons = []
        for overview in await service.coverage():
            if overview.overdue_items:
                listed = ", ".join(overview.overdue[:LISTED])
                more = (f" and {overview.overdue_items - LISTED} more"
                        if overview.overdue_items > LISTED else "")
                reasons.append(f"fund {overview.fund_code}: {overview.overdue_items} payout(s) "
                               f"overdue, {overview.overdue_amount} {overview.currency} in all: "
                               f"{listed}{more}")
            if overview.under_covered:
                reasons.append(f"fund {overview.fund_code}: coverage {overview.coverage_ratio} "
                               f"(MT5 equity {overview.actual_equity} against obligations "
                               f"{overview.obligations} {overview.currency})")
        return reasons

    return fund_obligations
