"""Reconciliation: MT5 balance deals (deposits and withdrawals) against recorded investments,
per client and fund.

Amounts are compared exactly, in Decimal and in the same currency. Within one client and fund:

- each investment (pending, active or redeemed; cancelled ones never took money) is matched to
  one MT5 deposit of exactly its principal, the deposit closest to its deposit date first;
- a deposit left without an investment is an `unrecorded_deposit` break;
- an investment left without a deposit is a `missing_deposit` break (its account, if any);
- a withdrawal is matched to a redeemed investment whose final value is exactly the amount
  withdrawn; one left unmatched is an `unrecorded_withdrawal` break.

Balance deals are read from `mt5_deals`, so reconciliation sees what the last sync stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.repositories._errors import driver_errors

_RECONCILED_STATUSES = ("pending", "active", "redeemed")


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


def _dec(value: Any) -> Decimal:
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(str(value))


class ReconciliationService:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def breaks(self, *, client_id: ObjectId | None = None,
                     fund_code: str | None = None) -> list[ReconciliationBreak]:
        scope: dict[str, Any] = {}
        if client_id is not None:
            scope["client_id"] = client_id
        if fund_code:
            scope["fund_code"] = fund_code
        with driver_errors("mt5_accounts"):
            accounts = [a async for a in self.db["mt5_accounts"].find(
                scope, {"account_id": 1, "client_id": 1, "fund_code": 1, "mt5_login": 1,
                        "currency": 1})]
        # By the account each deal was synced for: a login can be re-mapped to another client
        # (or exist at two brokers), so it does not say whose money a deal was.
        by_id = {a["_id"]: a for a in accounts}
        deals: dict[tuple[ObjectId, str], list[_Deal]] = defaultdict(list)
        if by_id:
            with driver_errors("mt5_deals"):
                cursor = self.db["mt5_deals"].find(
                    {"mt5_account_id": {"$in": list(by_id)}, "deal_type": "balance"},
                    {"mt5_account_id": 1, "mt5_login": 1, "ticket": 1, "time": 1, "profit": 1,
                     "currency": 1},
                    sort=[("time", 1), ("ticket", 1)])
                async for raw in cursor:
                    account = by_id[raw["mt5_account_id"]]
                    deals[(account["client_id"], account["fund_code"])].append(_Deal(
                        raw["ticket"], raw["mt5_login"], account["account_id"], raw["time"],
                        _dec(raw["profit"]), raw["currency"]))
        with driver_errors("investments"):
            investments = [i async for i in self.db["investments"].find(
                {**scope, "status": {"$in": list(_RECONCILED_STATUSES)}},
                {"investment_id": 1, "client_id": 1, "fund_code": 1, "principal_amount": 1,
                 "current_value": 1, "currency": 1, "deposit_date": 1, "status": 1},
                sort=[("deposit_date", 1), ("investment_id", 1)])]
        grouped: dict[tuple[ObjectId, str], list[dict[str, Any]]] = defaultdict(list)
        for investment in investments:
            grouped[(investment["client_id"], investment["fund_code"])].append(investment)
        accounts_of: dict[tuple[ObjectId, str], list[dict[str, Any]]] = defaultdict(list)
        for account in accounts:
            accounts_of[(account["client_id"], account["fund_code"])].append(account)

        found: list[ReconciliationBreak] = []
        for key in sorted(set(deals) | set(grouped), key=lambda k: (str(k[0]), k[1])):
            found.extend(_reconcile(key, deals.get(key, []), grouped.get(key, []),
                                    accounts_of.get(key, [])))
        names = await self._client_names({b.client_id for b in found})
        return [_named(b, names.get(b.client_id)) for b in found]

    async def _client_names(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        with driver_errors("users"):
            cursor = self.db["users"].find({"_id": {"$in": [ObjectId(i) for i in ids]}},
                                           {"first_name": 1, "last_name": 1})
            return {str(u["_id"]): f"{u.get('first_name', '')} {u.get('last_name', '')}".strip()
                    async for u in cursor}


def _named(found: ReconciliationBreak, name: str | None) -> ReconciliationBreak:
    values = {f: getattr(found, f) for f in ReconciliationBreak.__dataclass_fields__}
    values["client_name"] = name
    return ReconciliationBreak(**values)


def _reconcile(key: tuple[ObjectId, str], deals: list[_Deal], investments: list[dict[str, Any]],
               accounts: list[dict[str, Any]]) -> list[ReconciliationBreak]:
    client_id, fund_code = str(key[0]), key[1]
    deposits = [d for d in deals if d.amount > 0]
    withdrawals = [d for d in deals if d.amount < 0]
    found: list[ReconciliationBreak] = []
    # Tickets are unique per account only, and a client's fund can span two accounts.
    used: set[tuple[str, int]] = set()
    for investment in investments:
        principal = _dec(investment["principal_amount"])
        candidates = [d for d in deposits if d.key not in used and d.amount == principal
                      and d.currency == investment["currency"]]
        if candidates:
            day = investment["deposit_date"]
            used.add(min(candidates, key=lambda d: (abs(d.time - day), d.ticket)).key)
            continue
        account = accounts[0] if len(accounts) == 1 else None
        found.append(ReconciliationBreak(
            kind=BreakKind.MISSING_DEPOSIT, client_id=client_id, client_name=None,
            fund_code=fund_code, account_id=account["account_id"] if account else None,
            mt5_login=account["mt5_login"] if account else None, amount=principal,
            currency=investment["currency"], investment_id=investment["investment_id"],
            deposit_date=investment["deposit_date"],
            message=(f"investment {investment['investment_id']} of {principal} "
                     f"{investment['currency']} has no MT5 deposit of that amount"
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
    redeemed = [i for i in investments if i["status"] == "redeemed"]
    matched: set[Any] = set()
    for deal in withdrawals:
        match = next((i for i in redeemed if i["_id"] not in matched
                      and i["currency"] == deal.currency
                      and _dec(i["current_value"]) == -deal.amount), None)
        if match is not None:
            matched.add(match["_id"])
            continue
        found.append(ReconciliationBreak(
            kind=BreakKind.UNRECORDED_WITHDRAWAL, client_id=client_id, client_name=None,
            fund_code=fund_code, account_id=deal.account_id, mt5_login=deal.login,
            amount=deal.amount, currency=deal.currency, deal_tickets=[deal.ticket],
            deal_time=deal.time,
            message=(f"MT5 withdrawal {deal.ticket} of {-deal.amount} {deal.currency} on "
                     f"{deal.account_id} matches no redeemed investment")))
    return found
