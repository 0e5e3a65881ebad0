"""Reconciliation: MT5 balance deals (deposits and withdrawals) against recorded investments,
per client and fund.

Amounts are compared exactly, in Decimal and in the same currency. Within one client and fund:

- each investment (any but a cancelled one, which never took money) is matched to
  one MT5 deposit of exactly its principal, the deposit closest to its deposit date first
  (`backend.money.accounts.pair_deposits`, the rule valuation uses to issue units);
- a deposit left without an investment is an `unrecorded_deposit` break;
- an investment left without a deposit is a `missing_deposit` break (its account, if any),
  except a pending one, whose money is announced and awaited;
- a withdrawal is matched to a closed (or legacy redeemed) investment whose final value is
  exactly the amount withdrawn; one left unmatched is an `unrecorded_withdrawal` break.
  Payouts of interest are withdrawals too; matching them with the ledger's payout entries is
  the valuation work's, not done here yet.

Balance deals are read from `mt5_deals`, so reconciliation sees what the last sync stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bson import ObjectId

from backend.models.investments import Investment, InvestmentStatus
from backend.models.mt5_accounts import Mt5Account
from backend.money.accounts import AccountInvestment, DepositDeal, pair_deposits
from backend.repositories.investments import InvestmentFilter
from backend.repositories.registry import Repositories

#: Every investment but a cancelled one (which never took money) is expected in MT5.
_RECONCILED_STATUSES = tuple(s for s in InvestmentStatus if s is not InvestmentStatus.CANCELLED)
#: Investments whose money went back to the client.
_REPAID_STATUSES = frozenset({InvestmentStatus.CLOSED, InvestmentStatus.REDEEMED})


class BreakKind(StrEnum):
    UNRECORDED_DEPOSIT = "unrecorded_deposit"
    MISSING_DEPOSIT = "missing_deposit"
    UNRECORDED_WITHDRAWAL = "unrecorded_withdrawal"


@dataclass(frozen=True, slots=True)
class ReconciliationBreak:
    kind: BreakKind
    client_id: str
    client_name: str | None
    fund_code: str
    account_id: str | None
    mt5_login: int | None
    amount: Decimal
    currency: str
    deal_tickets: list[int] = field(default_factory=list)
    deal_time: datetime | None = None
    investment_id: str | None = None
    deposit_date: datetime | None = None
    message: str = ""


@dataclass(slots=True)
class _Deal:
    ticket: int
    login: int
    account_id: str
    time: datetime
    amount: Decimal
    currency: str

    @property
    def key(self) -> tuple[str, int]:
        return self.account_id, self.ticket


class ReconciliationService:
    def __init__(self, repos: Repositories) -> None:
        self.accounts = repos.mt5_accounts
        self.deals = repos.deals
        self.investments = repos.investments
        self.users = repos.users

    async def breaks(self, *, client_id: ObjectId | None = None,
                     fund_code: str | None = None) -> list[ReconciliationBreak]:
        accounts = await self.accounts.in_scope(client_id=client_id, fund_code=fund_code)
        # By the account each deal was synced for: a login can be re-mapped to another client
        # (or exist at two brokers), so it does not say whose money a deal was.
        by_id = {a.id: a for a in accounts if a.id is not None}
        deals: dict[tuple[ObjectId, str], list[_Deal]] = defaultdict(list)
        for deal in await self.deals.balance_deals(list(by_id)):
            account = by_id[deal.mt5_account_id]
            deals[(account.client_id, account.fund_code)].append(_Deal(
                deal.ticket, deal.mt5_login, account.account_id, deal.time, deal.profit,
                deal.currency))
        investments = await self.investments.reconcilable(
            InvestmentFilter(client_id=client_id, fund_code=fund_code),
            statuses=_RECONCILED_STATUSES)
        grouped: dict[tuple[ObjectId, str], list[Investment]] = defaultdict(list)
        for investment in investments:
            grouped[(investment.client_id, investment.fund_code)].append(investment)
        accounts_of: dict[tuple[ObjectId, str], list[Mt5Account]] = defaultdict(list)
        for account in accounts:
            accounts_of[(account.client_id, account.fund_code)].append(account)

        found: list[ReconciliationBreak] = []
        for key in sorted(set(deals) | set(grouped), key=lambda k: (str(k[0]), k[1])):
            found.extend(_reconcile(key, deals.get(key, []), grouped.get(key, []),
                                    accounts_of.get(key, [])))
        names = await self.users.full_names([ObjectId(b.client_id) for b in found])
        return [_named(b, names.get(ObjectId(b.client_id))) for b in found]


def _named(found: ReconciliationBreak, name: str | None) -> ReconciliationBreak:
    values = {f: getattr(found, f) for f in ReconciliationBreak.__dataclass_fields__}
    values["client_name"] = name
    return ReconciliationBreak(**values)


def _reconcile(key: tuple[ObjectId, str], deals: list[_Deal], investments: list[Investment],
               accounts: list[Mt5Account]) -> list[ReconciliationBreak]:
    client_id, fund_code = str(key[0]), key[1]
    deposits = [d for d in deals if d.amount > 0]
    withdrawals = [d for d in deals if d.amount < 0]
    found: list[ReconciliationBreak] = []
    # Tickets are unique per account only, and a client's fund can span two accounts.
    paired = pair_deposits(
        [AccountInvestment(key=i.investment_id, principal=i.principal_amount,
                           currency=i.currency, deposit_date=i.deposit_date)
         for i in investments],
        [DepositDeal(key=d.key, ticket=d.ticket, time=d.time, amount=d.amount,
                     currency=d.currency) for d in deposits])
    used = {deal.key for deal in paired.values()}
    for investment in investments:
        principal = investment.principal_amount
        if investment.investment_id in paired:
            continue
        if investment.status is InvestmentStatus.PENDING:
            # Money announced, not received yet: its deposit is awaited, not missing.
            continue
        account = accounts[0] if len(accounts) == 1 else None
        found.append(ReconciliationBreak(
            kind=BreakKind.MISSING_DEPOSIT, client_id=client_id, client_name=None,
            fund_code=fund_code, account_id=account.account_id if account else None,
            mt5_login=account.mt5_login if account else None, amount=principal,
            currency=investment.currency, investment_id=investment.investment_id,
            deposit_date=investment.deposit_date,
            message=(f"investment {investment.investment_id} of {principal} "
                     f"{investment.currency} has no MT5 deposit of that amount"
                     + ("" if accounts else " (no MT5 account mapped for this fund)"))))
    for deal in deposits:
        if deal.key in used:
            continue
        found.append(ReconciliationBreak(
            kind=BreakKind.UNRECORDED_DEPOSIT, client_id=client_id, client_name=None,
            fund_code=fund_code, account_id=deal.account_id, mt5_login=deal.login,
            amount=deal.amount, currency=deal.currency, deal_tickets=[deal.ticket],
            deal_time=deal.time,
            message=(f"MT5 deposit {deal.ticket} of {deal.amount} {deal.currency} on "
                     f"{deal.account_id} is not recorded by any investment")))
    redeemed = [i for i in investments if i.status in _REPAID_STATUSES]
    matched: set[Any] = set()
    for deal in withdrawals:
        match = next((i for i in redeemed if i.id not in matched
                      and i.currency == deal.currency
                      and i.current_value == -deal.amount), None)
        if match is not None:
            matched.add(match.id)
            continue
        found.append(ReconciliationBreak(
            kind=BreakKind.UNRECORDED_WITHDRAWAL, client_id=client_id, client_name=None,
            fund_code=fund_code, account_id=deal.account_id, mt5_login=deal.login,
            amount=deal.amount, currency=deal.currency, deal_tickets=[deal.ticket],
            deal_time=deal.time,
            message=(f"MT5 withdrawal {deal.ticket} of {-deal.amount} {deal.currency} on "
                     f"{deal.account_id} matches no redeemed investment")))
    return found
