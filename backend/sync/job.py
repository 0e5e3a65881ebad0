"""One MT5 sync pass over every active account mapping.

For each account, under its lease (`backend.sync.lease`) and at most `sync_concurrency` at a
time: fetch the account's snapshot and its deals since the high-water mark (minus an overlap,
so a deal booked late is not missed) from the bridge, convert and check everything, and only
then write. The writes are a constant handful of round trips whatever the number of deals:

1. deals: one unordered bulk upsert with `$setOnInsert` on (mt5_account_id, ticket), so replays
   and overlapping windows never store a deal twice;
2. the day's equity point: one upsert on (account, day);
3. the value of every live investment the account carries (a first one and its top-ups), by
   unit accounting (`backend.services.valuation`): four reads (the investments the account
   carries or carried, its deposit deals, its equity history, their ledger entries), the
   account's history replayed, then one update per live investment with its actual value,
   its units and whether its deposit is still awaited;
4. the account: snapshot, `sync_status` ok, `last_success_at` and the new high-water mark,
   only if no later mark is stored (the mark never moves backwards).

No transaction: the order is the safety net, the same on a standalone server and a replica set.
Every write is idempotent (an upsert of what the terminal said, or an absolute `$set`) and the
account, which carries the high-water mark and the success, is written last; a failure part-way
leaves the mark where it was, and the next pass redoes the same writes to the same result. A
failed account gets `sync_status` failed, the error and `last_sync_at`, and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from backend.bridge import (
    BridgeAccount,
    BridgeClient,
    BridgeDeal,
    BridgeRefused,
    BridgeUnreachable,
)
from backend.db.types import Database
from backend.errors import FidusError
from backend.models.mt5_accounts import Mt5Account
from backend.models.mt5_deals import DealEntry, DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint, utc_day
from backend.repositories.base import Clock, utcnow
from backend.repositories.investments import LIVE_IN_FUND
from backend.services import Services
from backend.settings import Settings
from backend.sync.lease import Leases, account_lease_name

logger = logging.getLogger(__name__)

#: Where the first sync of an account starts: before any account the fund can hold.
HISTORY_START = datetime(2000, 1, 1, tzinfo=UTC)
#: Each window starts this long before the previous end: a deal the trade server books with a
#: slightly earlier time than the last sync's end is still fetched (and stored only once).
DEALS_OVERLAP = timedelta(hours=1)
MAX_ERROR_LENGTH = 2000

_ENTRIES = {0: DealEntry.IN, 1: DealEntry.OUT, 2: DealEntry.INOUT, 3: DealEntry.OUT_BY}
_DEAL_TYPES = {t.value for t in DealType}


class SyncDataError(FidusError):
    """The bridge's answer cannot be stored as it is (wrong login, server, currency, unknown
    type)."""

    code = "SYNC_DATA_INVALID"


class SnapshotSuperseded(Exception):
    """The account already holds a later snapshot than the one being written; the writes
    stop there, so nothing goes back in time."""


class AccountStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class AccountFetch:
    """Everything the bridge said about one account, converted and checked, ready to write."""

    account: Mt5Account
    info: BridgeAccount
    deals: list[Mt5Deal]
    window_start: datetime
    window_end: datetime


@dataclass(slots=True)
class AccountOutcome:
    account_id: str
    mt5_login: int
    status: AccountStatus
    deals_fetched: int = 0
    new_deals: int = 0
    equity: Decimal | None = None
    error: str | None = None
    fetch_seconds: float = 0.0
    write_seconds: float = 0.0


@dataclass(slots=True)
class SyncReport:
    started_at: datetime
    finished_at: datetime | None = None
    outcomes: list[AccountOutcome] = field(default_factory=list)

    def count(self, status: AccountStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def failed(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.status is AccountStatus.FAILED]

    @property
    def new_deals(self) -> int:
        return sum(o.new_deals for o in self.outcomes)


def error_summary(error: BaseException) -> str:
    """One line for `sync_error` and the logs: the error's code, then its message."""
    if isinstance(error, BridgeRefused):
        text = f"{error.bridge_code}: {error.message}"
    elif isinstance(error, FidusError):
        text = f"{error.code}: {error.message}"
    else:
        text = f"{type(error).__name__}: {error}"
    return (text.splitlines()[0] if text else type(error).__name__)[:MAX_ERROR_LENGTH]


def stored_deal(account: Mt5Account, deal: BridgeDeal, *, synced_at: datetime) -> Mt5Deal:
    deal_type = deal.type_name.lower()
    if deal_type not in _DEAL_TYPES:
        raise SyncDataError(f"deal {deal.ticket} has a deal type the platform does not know: "
                            f"{deal.type_name}", details={"ticket": deal.ticket})
    return Mt5Deal(
        mt5_account_id=account.id,
        mt5_login=account.mt5_login,
        ticket=deal.ticket,
        order=deal.order,
        position_id=deal.position_id,
        time=deal.time,
        deal_type=DealType(deal_type),
        entry=_ENTRIES.get(deal.entry),
        symbol=deal.symbol or None,
        volume=deal.volume,
        price=deal.price,
        profit=deal.profit,
        commission=deal.commission,
        swap=deal.swap,
        fee=deal.fee,
        currency=account.currency,
        comment=deal.comment or None,
        magic=deal.magic,
        synced_at=synced_at,
    )


class SyncJob:
    """Runs passes; `fetch` (bridge only) and `write` (database only) are separate steps so
    each can be timed and tested on its own."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        bridge: BridgeClient,
        *,
        clock: Clock = utcnow,
        leases: Leases | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.bridge = bridge
        self.clock = clock
        self.concurrency = concurrency or settings.sync_concurrency
        self.leases = leases or Leases(db, clock=clock)
        services = Services(db, settings, clock=clock)
        #: The audit trail, whose relay the worker runs beside its passes.
        self.audit = services.audit
        self.investments = services.investments
        self.accounts = services.repos.mt5_accounts
        self.deals = services.repos.deals
        self.equity = services.repos.equity
        self.valuation = services.valuation

    # --- a pass ------------------------------------------------------------------------

    async def active_accounts(self) -> list[Mt5Account]:
        return await self.accounts.due_for_sync()

    async def run_once(
        self, *, progress: Callable[[int, int], None] | None = None
    ) -> SyncReport:
        report = SyncReport(started_at=self.clock())
        accounts = await self.active_accounts()
        semaphore = asyncio.Semaphore(self.concurrency)
        done = 0
        if progress:
            progress(0, len(accounts))

        async def one(account: Mt5Account) -> AccountOutcome:
            nonlocal done
            async with semaphore:
                outcome = await self.sync_account(account)
            done += 1
            if progress:
                progress(done, len(accounts))
            return outcome

        report.outcomes = list(await asyncio.gather(*(one(a) for a in accounts)))
        report.finished_at = self.clock()
        logger.info("MT5 sync pass: %d accounts, %d ok, %d failed, %d skipped, %d new deals",
                    len(accounts), report.count(AccountStatus.OK),
                    report.count(AccountStatus.FAILED), report.count(AccountStatus.SKIPPED),
                    report.new_deals)
        return report

    async def fetch_all(self, accounts: Sequence[Mt5Account]
                        ) -> list[AccountFetch | BaseException]:
        """The fetch step alone for many accounts, `concurrency` at a time (no leases, no
        writes): the benchmark times the bridge side with it."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(account: Mt5Account) -> AccountFetch | BaseException:
            async with semaphore:
                try:
                    return await self.fetch(account)
                except (FidusError, ValueError) as error:
                    return error

        return list(await asyncio.gather(*(one(a) for a in accounts)))

    # --- one account -------------------------------------------------------------------

    async def sync_account(self, account: Mt5Account) -> AccountOutcome:
        outcome = AccountOutcome(account.account_id, account.mt5_login, AccountStatus.OK)
        lease = account_lease_name(account.id)
        seconds = self.settings.sync_lease_seconds
        try:
            if not await self.leases.acquire(lease, seconds=seconds):
                logger.info("MT5 account %s is being synced by another worker; skipped",
                            account.account_id)
                outcome.status = AccountStatus.SKIPPED
                return outcome
        except FidusError as error:
            return await self._failed(account, outcome, error)
        try:
            started = time.perf_counter()
            try:
                fetched = await self.fetch(account)
            finally:
                outcome.fetch_seconds = time.perf_counter() - started
            outcome.deals_fetched = len(fetched.deals)
            outcome.equity = fetched.info.equity
            # The fetch may have outlived the lease; renewing proves no one else took it.
            if not await self.leases.renew(lease, seconds=seconds):
                logger.warning("MT5 account %s: lease lost during the fetch; nothing written",
                               account.account_id)
                outcome.status = AccountStatus.SKIPPED
                return outcome
            started = time.perf_counter()
            try:
                outcome.new_deals = await self.write(fetched)
            except SnapshotSuperseded:
                logger.warning("MT5 account %s: a later snapshot is already stored (or the "
                               "account is gone); this one is not", account.account_id)
                outcome.status = AccountStatus.SKIPPED
            finally:
                outcome.write_seconds = time.perf_counter() - started
            return outcome
        except (FidusError, ValueError) as error:
            return await self._failed(account, outcome, error)
        except Exception as error:
            logger.exception("MT5 account %s: unexpected error during sync", account.account_id)
            return await self._failed(account, outcome, error)
        finally:
            try:
                await self.leases.release(lease)
            except FidusError as error:
                logger.warning("MT5 account %s: lease not released (%s); it expires in %d s",
                               account.account_id, error_summary(error), seconds)

    async def fetch(self, account: Mt5Account) -> AccountFetch:
        """Read the account and its new deals from the bridge and convert them; no writes."""
        end = self.clock()
        mark = account.deals_synced_to
        start = (mark - DEALS_OVERLAP) if mark else HISTORY_START
        info = await self.bridge.account(account.mt5_login)
        if info.login != account.mt5_login:
            raise SyncDataError(
                f"the bridge answered for login {info.login} instead of {account.mt5_login}",
                details={"requested_login": account.mt5_login, "answered_login": info.login})
        if info.server != account.server:
            raise SyncDataError(
                f"the bridge answered from server {info.server!r} but the mapping is on "
                f"{account.server!r}",
                details={"mt5_server": info.server, "mapping_server": account.server})
        if info.currency != account.currency:
            raise SyncDataError(
                f"MT5 reports currency {info.currency} but the mapping says {account.currency}",
                details={"mt5_currency": info.currency, "mapping_currency": account.currency})
        deals = await self.bridge.deals(account.mt5_login, start=start, end=end)
        stored = [stored_deal(account, d, synced_at=end) for d in deals]
        return AccountFetch(account, info, stored, start, end)

    async def write(self, fetched: AccountFetch) -> int:
        """Store one account's fetch; returns how many deals were new."""
        account, info = fetched.account, fetched.info
        assert account.id is not None
        now = fetched.window_end
        new_deals = await self.deals.upsert_batch(fetched.deals) if fetched.deals else 0
        point = Mt5EquityPoint(
            mt5_account_id=account.id, mt5_login=account.mt5_login, day=utc_day(info.as_of),
            balance=info.balance, equity=info.equity, currency=account.currency,
            recorded_at=info.as_of)
        if not await self.equity.append_daily_point(point):
            raise SnapshotSuperseded(account.account_id)
        await self._value_investments(account, info)
        recorded = await self.accounts.record_sync_success(
            account.id, balance=info.balance, equity=info.equity, margin=info.margin,
            free_margin=info.margin_free, margin_level=info.margin_level, profit=info.profit,
            leverage=info.leverage, snapshot_at=info.as_of, synced_at=now,
            deals_synced_to=fetched.window_end)
        if not recorded:
            raise SnapshotSuperseded(account.account_id)
        return new_deals

    async def _value_investments(self, account: Mt5Account, info: BridgeAccount) -> None:
        # Closed investments keep the value they closed with; they are replayed all the same,
        # since their units were part of the pool while they held them.
        assert account.id is not None
        books = await self.valuation.value_accounts([account])
        if not books:
            return
        [book] = books[account.id]
        for note in book.book.set_aside:
            logger.warning("MT5 account %s valuation: %s", account.account_id, note)
        investments = [i for i in book.investments if i.status in LIVE_IN_FUND]
        if not investments:
            return
        if any(i.performance_updated_at is not None and i.performance_updated_at > info.as_of
               for i in investments):
            raise SnapshotSuperseded(account.account_id)
        for investment in investments:
            if investment.currency != account.currency:
                raise SyncDataError(
                    f"investment {investment.investment_id} is in {investment.currency} but "
                    f"MT5 account {account.account_id} is in {account.currency}")
        for investment in investments:
            valued = book.of(investment)
            await self.investments.update_performance(
                investment, valued.actual_value, at=info.as_of, units=valued.units,
                awaiting_deposit=valued.awaiting_deposit)

    async def _failed(self, account: Mt5Account, outcome: AccountOutcome,
                      error: BaseException) -> AccountOutcome:
        outcome.status = AccountStatus.FAILED
        outcome.error = error_summary(error)
        logger.error("MT5 account %s (login %d) sync failed: %s",
                     account.account_id, account.mt5_login, outcome.error)
        try:
            await self.accounts.record_sync_failure(
                account.id,  # type: ignore[arg-type]
                error=outcome.error, at=self.clock())
        except FidusError as write_error:
            logger.error("MT5 account %s: the failure could not be recorded either: %s",
                         account.account_id, error_summary(write_error))
        return outcome


def bridge_unreachable_everywhere(report: SyncReport) -> bool:
    """True when accounts were attempted and every one failed to reach the bridge."""
    failed = report.failed
    return bool(failed) and len(failed) == len(report.outcomes) and all(
        (o.error or "").startswith(f"{BridgeUnreachable.code}:") for o in failed)


__all__ = [
    "AccountFetch",
    "AccountOutcome",
    "AccountStatus",
    "SyncDataError",
    "SyncJob",
    "SnapshotSuperseded",
    "SyncReport",
    "bridge_unreachable_everywhere",
    "error_summary",
]
