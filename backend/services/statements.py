"""Client statements and performance: `backend.money.statement` fed with what is stored.

A statement covers the client's investments whose contract runs or ran (pending investments
have no contract yet; cancelled ones were entered by mistake and never held money): their
stored schedules (cancelled items left out), their ledger entries and their actual values at
every close (`ValuationService`: units of the MT5 account that backs each one, or at cost).

A period is given as a month (`2026-10`), a quarter (`2026-Q3`), a year (`2026`) or from/to
dates (both included). It may not start after today, and one that ends after today is a
statement to date: it ends today. Every read is a constant number of round trips, however many
investments the client holds.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from bson import ObjectId

from backend.errors import InvalidData, NotFound
from backend.models.investments import Investment
from backend.models.schedule_items import ScheduleItem
from backend.models.users import User, UserType
from backend.money.calendar import add_months
from backend.money.flows import FlowKind, LedgerFlow, flow_totals
from backend.money.performance import (
    ValuePoint,
    combine_value_series,
    money_weighted_return,
    portfolio_time_weighted_return,
    value_on,
)
from backend.money.promised import contractual_value_on
from backend.money.statement import StatementFigures, StatementInvestment, statement_figures
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.services.valuation import (
    CONTRACT_STATUSES,
    InvestmentValuation,
    ValuationService,
    ledger_flows,
)

ZERO = Decimal("0.00")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date
    #: What the period was asked as: "2026-10", "2026-Q3", "2026" or "2026-10-01_2026-10-31".
    label: str


def _period_invalid(message: str, **details: object) -> InvalidData:
    return InvalidData(message, code="PERIOD_INVALID", details=details or None)


def parse_period(*, period: str | None = None, start: date | None = None,
                 end: date | None = None, today: date) -> Period:
    """The period asked for, by the rules in the module docstring."""
    if period is not None and (start is not None or end is not None):
        raise _period_invalid("give a period or from/to dates, not both")
    if period is not None:
        text = period.strip()
        if match := _MONTH.match(text):
            year, month = int(match[1]), int(match[2])
            if not 1 <= month <= 12:
                raise _period_invalid(f"{text} is not a month", period=text)
            first = date(year, month, 1)
            last = date(year, month, calendar.monthrange(year, month)[1])
        elif match := _QUARTER.match(text):
            year, quarter = int(match[1]), int(match[2])
            first = date(year, 3 * quarter - 2, 1)
            last = add_months(first, 3) - timedelta(days=1)
        elif match := _YEAR.match(text):
            first, last = date(int(match[1]), 1, 1), date(int(match[1]), 12, 31)
        else:
            raise _period_invalid(f"{text!r} is not a period: use 2026-10, 2026-Q3 or 2026",
                                  period=text)
        label = text
    else:
        if start is None or end is None:
            raise _period_invalid("give a period (2026-10, 2026-Q3, 2026) or both from and to")
        if end < start:
            raise _period_invalid("the period ends before it starts", start=start.isoformat(),
                                  end=end.isoformat())
        first, last = start, end
        label = f"{start.isoformat()}_{end.isoformat()}"
    if first > today:
        raise _period_invalid("the period starts after today", start=first.isoformat())
    return Period(start=first, end=min(last, today), label=label)


@dataclass(frozen=True, slots=True)
class ClientStatement:
    client: User
    fund_manager: str
    period: Period
    figures: StatementFigures
    #: The statement's investments by business id, with their valuation now.
    investments: dict[str, InvestmentValuation]

    @property
    def client_name(self) -> str:
        return f"{self.client.first_name} {self.client.last_name}"


@dataclass(frozen=True, slots=True)
class MonthValue:
    year: int
    month: int
    #: The actual value at the close of the month's last day (today, for this month).
    value: Decimal


@dataclass(frozen=True, slots=True)
class InvestmentPerformance:
    """One investment (investment None: the client's total) from its first flow to today."""

    investment: Investment | None
    contractual_value: Decimal
    actual_value: Decimal
    subscribed: Decimal
    received: Decimal
    #: actual value + money received - money subscribed.
    gain: Decimal
    time_weighted_return: Decimal | None
    money_weighted_return: Decimal | None
    monthly_values: tuple[MonthValue, ...]
    awaiting_deposit: bool


@dataclass(slots=True)
class _ClientBooks:
    client: User
    investments: list[Investment]
    schedules: dict[str, StatementInvestment]
    flows: list[LedgerFlow]
    valuations: dict[str, InvestmentValuation]


class StatementService:
    def __init__(self, repos: Repositories, valuation: ValuationService, *,
                 fund_manager: str, clock: Clock = utcnow) -> None:
        self.valuation = valuation
        self.fund_manager = fund_manager
        self.clock = clock
        self.users = repos.users
        self.investments = repos.investments
        self.schedule = repos.schedule
        self.ledger = repos.ledger

    def today(self) -> date:
        return self.valuation.today()

    async def _client(self, client_id: ObjectId) -> User:
        client = await self.users.find_by_id(client_id)
        if client is None or client.user_type is not UserType.CLIENT:
            raise NotFound("no such client", details={"client_id": str(client_id)})
        return client

    async def _books(self, client_id: ObjectId) -> _ClientBooks:
        """Everything a client's figures come from, in a constant number of round trips."""
        client = await self._client(client_id)
        investments = [i for i in await self.investments.of_client(client_id)
                       if i.status in CONTRACT_STATUSES and i.id is not None]
        ids = [i.id for i in investments if i.id is not None]
        items = await self.schedule.of_investments(ids)
        entries = await self.ledger.of_investments(ids)
        valued = await self.valuation.value_investments(investments)
        items_of: dict[ObjectId, list[ScheduleItem]] = defaultdict(list)
        for item in items:
            items_of[item.investment_id].append(item)
        schedules = {}
        valuations = {}
        for investment in investments:
            assert investment.id is not None
            valuation = valued[investment.id]
            valuations[investment.investment_id] = valuation
            schedules[investment.investment_id] = StatementInvestment(
                investment_id=investment.investment_id, fund_code=investment.fund_code,
                schedule=self.valuation.payment_schedule(investment, items_of[investment.id]),
                values=valuation.values)
        return _ClientBooks(client=client, investments=investments, schedules=schedules,
                            flows=ledger_flows(entries), valuations=valuations)

    async def statement(self, client_id: ObjectId, period: Period) -> ClientStatement:
        books = await self._books(client_id)
        figures = statement_figures(list(books.schedules.values()), books.flows,
                                    start=period.start, end=period.end)
        return ClientStatement(client=books.client, fund_manager=self.fund_manager,
                               period=period, figures=figures, investments=books.valuations)

    async def clients(self) -> list[User]:
        """Every client, for the batch of statements."""
        return await self.users.by_type(UserType.CLIENT, active_only=False)

    async def performance(self, client_id: ObjectId
                          ) -> tuple[list[InvestmentPerformance], InvestmentPerformance]:
        """Each investment's performance from its first flow to today, and the client's."""
        books = await self._books(client_id)
        today = self.today()
        lines = []
        for investment in books.investments:
            own = [f for f in books.flows if f.investment_id == investment.investment_id]
            key = investment.investment_id
            lines.append(_performance(
                investment, own, values=books.valuations[key].values,
                contractual=contractual_value_on(books.schedules[key].schedule, own, on=today),
                actual=books.valuations[key].actual_value, today=today,
                awaiting=books.valuations[key].awaiting_deposit))
        total = _performance(
            None, books.flows,
            values=combine_value_series(v.values for v in books.valuations.values()),
            contractual=sum((line.contractual_value for line in lines), ZERO),
            actual=sum((line.actual_value for line in lines), ZERO), today=today,
            awaiting=any(line.awaiting_deposit for line in lines))
        return lines, total


def _month_ends(first: date, today: date) -> list[date]:
    ends = []
    month = first.replace(day=1)
    while month <= today:
        last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        ends.append(min(last, today))
        month = add_months(month, 1)
    return ends


def _performance(investment: Investment | None, flows: Sequence[LedgerFlow], *,
                 values: Sequence[ValuePoint], contractual: Decimal, actual: Decimal,
                 today: date, awaiting: bool) -> InvestmentPerformance:
    totals = flow_totals(flows, through=today)
    received = totals.payouts + totals.principal_returned
    cash = [flow.cash_flow() for flow in flows if flow.on <= today]
    days = [flow.on for flow in flows] + [point.on for point in values]
    first = min(days) if days else today
    monthly = tuple(MonthValue(year=end.year, month=end.month,
                               value=value_on(values, end) or ZERO)
                    for end in _month_ends(first, today))
    subscriptions = [f for f in flows if f.counts_as is FlowKind.SUBSCRIPTION]
    return InvestmentPerformance(
        investment=investment, contractual_value=contractual, actual_value=actual,
        subscribed=totals.subscriptions, received=received,
        gain=actual + received - totals.subscriptions,
        time_weighted_return=portfolio_time_weighted_return(
            values, cash, start=first - timedelta(days=1), end=today) if subscriptions
        else None,
        money_weighted_return=money_weighted_return(cash, value=actual, on=today),
        monthly_values=monthly, awaiting_deposit=awaiting)
