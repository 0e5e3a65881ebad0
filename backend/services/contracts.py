"""Contracts: each investment's payment schedule, its payouts and the capital ledger.

What the fund owes whom and when is the schedule (`schedule_items`), built from the fund terms
in force on the deposit date when the deposit is confirmed. What has been paid is the ledger
(`ledger_entries`), append-only. Every step that spans documents is keyed so that a retry or a
concurrent twin completes the same work instead of doing it twice:

- the schedule's items are unique per (investment, number): building it again stores nothing;
- a ledger entry's idempotency key names the movement (`subscription:<investment>`,
  `payout:<investment>:<number>`, `reversal:<entry>`): booking it again stores nothing;
- a payout books its ledger entry first, then marks the item paid (audited on the item); a
  payout interrupted between the two is finished by a retry with the same `Idempotency-Key`, by
  the lifecycle pass, or by `verify --fix`.

The lifecycle pass applies every transition that is due on a day (incubating -> active ->
matured, scheduled -> due, matured with its principal paid -> closed), each audited, computed
from the dates rather than step by step, so one pass catches up after any downtime; a lease
keeps two passes from running at once.

It also prices each due performance-share item (UNLIMITED) still without an amount, from the
investment's unit valuation (`ValuationService.performance_shares_of`): a share above 0.00 is
set as the item's amount (`schedule_item.priced`), and the admin pays it as any other item; no
gain above the high-water mark sets 0.00 and cancels the item in the same audited write
(`schedule_item.no_gain`), since nothing is owed and a paid item must have its ledger entry. An
item whose investment has no final valuation for its date yet (deposit not paired in the
account, or the account not synced past the date) stays unpriced and is counted as such; a
later pass prices it. Only items with no amount are written (`amount: None` in the filter), so
a price is set once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from bson import ObjectId

from backend.errors import Conflict, InvalidData, VersionConflict
from backend.funds import FundCatalog
from backend.models.investments import (
    INVESTED_STATUSES,
    Investment,
    InvestmentStatus,
    deposit_day,
)
from backend.models.ledger_entries import Direction, LedgerEntry, LedgerEntryKind
from backend.models.schedule_items import (
    OPEN_ITEM_STATUSES,
    ScheduleItem,
    ScheduleItemKind,
    ScheduleItemRead,
    ScheduleItemStatus,
    ScheduleRead,
    ScheduleTotals,
)
from backend.money.schedule import (
    ContractDates,
    build_schedule,
    contract_dates,
    lifecycle_state_on,
)
from backend.repositories.base import Clock, Page, utcnow
from backend.repositories.registry import Repositories
from backend.services.audit import Actor, AuditTrail
from backend.services.valuation import ValuationService

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
LIFECYCLE_LEASE = "lifecycle"
LIFECYCLE_LEASE_SECONDS = 600

_PAID_KIND = {
    ScheduleItemKind.INTEREST: LedgerEntryKind.INTEREST_PAID,
    ScheduleItemKind.PERFORMANCE_SHARE: LedgerEntryKind.PERFORMANCE_SHARE_PAID,
    ScheduleItemKind.PRINCIPAL: LedgerEntryKind.PRINCIPAL_RETURNED,
}


def as_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def subscription_key(investment: Investment) -> str:
    return f"subscription:{investment.id}"


def payout_key(investment_id: ObjectId, number: int) -> str:
    return f"payout:{investment_id}:{number}"


def reversal_key(entry_id: ObjectId) -> str:
    return f"reversal:{entry_id}"


@dataclass(frozen=True, slots=True)
class Payout:
    item: ScheduleItem
    entry: LedgerEntry
    #: False when an earlier request with the same Idempotency-Key paid it.
    created: bool


@dataclass(slots=True)
class LifecycleReport:
    day: date
    investments_moved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    items_due: int = 0
    schedules_built: int = 0
    payouts_completed: int = 0
    shares_priced: int = 0
    #: Performance-share items cancelled: no gain above the high-water mark.
    shares_without_gain: int = 0
    #: Due performance-share items left without an amount: no final valuation yet.
    shares_unpriced: int = 0
    skipped: bool = False

    @property
    def changes(self) -> int:
        return (sum(self.investments_moved.values()) + self.items_due + self.schedules_built
                + self.payouts_completed + self.shares_priced + self.shares_without_gain)


@dataclass(frozen=True, slots=True)
class MonthObligation:
    month: date
    fund_code: str
    currency: str
    due: Decimal
    scheduled: Decimal
    items: int
    unpriced_items: int


@dataclass(frozen=True, slots=True)
class Obligations:
    overdue: list[ScheduleItem]
    months: list[MonthObligation]


class ContractService:
    def __init__(self, repos: Repositories, funds: FundCatalog, audit: AuditTrail, *,
                 clock: Clock = utcnow, valuation: ValuationService | None = None) -> None:
        self.funds = funds
        self.valuation = valuation or ValuationService(repos, funds, clock=clock)
        self.audit = audit
        self.clock = clock
        self.investments = repos.investments
        self.schedule = repos.schedule
        self.ledger = repos.ledger
        self.locks = repos.locks
        audit.watch(repos.schedule)

    def today(self) -> date:
        return as_day(self.clock())

    # the contract's start --------------------------------------------------------------

    async def open_contract(self, investment: Investment, *, actor: Actor) -> int:
        """Store the schedule of a confirmed investment and book its subscription; both are
        keyed, so a repeat (a retry, a twin, the lifecycle pass) stores nothing new. Returns
        how many items this call stored."""
        assert investment.id is not None
        terms = self.funds.terms_on(investment.fund_code, as_day(investment.deposit_date))
        plan = build_schedule(terms, principal=investment.principal_amount,
                              deposit_date=as_day(investment.deposit_date))
        today, now = self.today(), self.clock()
        items, records = [], []
        for planned in plan.items:
            item = ScheduleItem(
                id=ObjectId(), investment_id=investment.id,
                investment_ref=investment.investment_id, client_id=investment.client_id,
                fund_code=investment.fund_code, terms_version=terms.terms_version,
                number=planned.number, kind=planned.kind,
                due_date=deposit_day(planned.due_date), amount=planned.amount,
                currency=planned.currency,
                status=(ScheduleItemStatus.DUE if planned.due_date <= today
                        else ScheduleItemStatus.SCHEDULED),
                created_at=now, updated_at=now, version=1)
            items.append(item)
            records.append(self.audit.draft(
                actor, action="schedule_item.create", entity_type="schedule_item",
                entity_id=str(item.id)))
        stored = await self.schedule.create_many(items, audits=records)
        await self.ledger.book(LedgerEntry(
            kind=LedgerEntryKind.SUBSCRIPTION, direction=Direction.IN,
            client_id=investment.client_id, investment_id=investment.id,
            investment_ref=investment.investment_id, fund_code=investment.fund_code,
            amount=investment.principal_amount, currency=investment.currency,
            effective_date=investment.deposit_date, booked_at=now, actor_id=actor.id,
            actor_type=actor.type, idempotency_key=subscription_key(investment),
            request_key=investment.idempotency_key))
        if stored:
            await self.audit.relay(repositories=[self.schedule])
        return stored

    async def cancel_contract(self, investment: Investment, *, actor: Actor,
                              reason: str) -> None:
        """An investment entered by mistake: its open items become `cancelled` and its
        subscription is reversed (never deleted). Refused once anything was paid out."""
        assert investment.id is not None
        items = await self.schedule.of_investment(investment.id)
        if any(item.status is ScheduleItemStatus.PAID for item in items):
            raise Conflict("an investment with payouts cannot be cancelled",
                           code="PAYOUTS_MADE",
                           details={"investment_id": investment.investment_id})
        for item in items:
            if item.status in OPEN_ITEM_STATUSES:
                await self.audit.update(
                    self.schedule, item, {"status": ScheduleItemStatus.CANCELLED},
                    actor=actor, action="schedule_item.cancel", entity_type="schedule_item",
                    reason=reason)
        subscription = await self.ledger.by_key(subscription_key(investment))
        if subscription is not None:
            await self.reverse(subscription, actor=actor, reason=reason)

    async def reverse(self, entry: LedgerEntry, *, actor: Actor, reason: str) -> LedgerEntry:
        assert entry.id is not None
        reversal, _ = await self.ledger.book(LedgerEntry(
            kind=LedgerEntryKind.REVERSAL,
            direction=Direction.OUT if entry.direction is Direction.IN else Direction.IN,
            client_id=entry.client_id, investment_id=entry.investment_id,
            investment_ref=entry.investment_ref, fund_code=entry.fund_code,
            schedule_number=entry.schedule_number, amount=entry.amount,
            currency=entry.currency, effective_date=deposit_day(self.today()),
            booked_at=self.clock(), actor_id=actor.id, actor_type=actor.type,
            idempotency_key=reversal_key(entry.id), reverses=entry.id, reason=reason))
        return reversal

    # reading ---------------------------------------------------------------------------

    async def items_of(self, investment: Investment) -> list[ScheduleItem]:
        assert investment.id is not None
        return await self.schedule.of_investment(investment.id)

    async def schedule_of(self, investment: Investment) -> ScheduleRead:
        """The items with their totals: scheduled, due and paid; performance shares without
        an amount yet are counted apart."""
        items = await self.items_of(investment)

        def total(status: ScheduleItemStatus) -> Decimal:
            return sum((i.amount or ZERO for i in items if i.status is status), ZERO)

        return ScheduleRead(
            investment_id=str(investment.id), investment_ref=investment.investment_id,
            fund_code=investment.fund_code, terms_version=investment.terms_version,
            incubation_end_date=as_day(investment.incubation_end_date)
            if investment.incubation_end_date else None,
            maturity_date=as_day(investment.maturity_date) if investment.maturity_date else None,
            items=[ScheduleItemRead.model_validate(item) for item in items],
            totals=ScheduleTotals(
                scheduled=total(ScheduleItemStatus.SCHEDULED), due=total(ScheduleItemStatus.DUE),
                paid=total(ScheduleItemStatus.PAID), currency=investment.currency,
                unpriced_items=sum(1 for i in items if i.amount is None
                                   and i.status in OPEN_ITEM_STATUSES)))

    async def ledger_page(self, *, client_id: ObjectId | None = None,
                          investment_id: ObjectId | None = None, page: int = 1,
                          page_size: int = 50) -> Page[LedgerEntry]:
        return await self.ledger.search(client_id=client_id, investment_id=investment_id,
                                        page=page, page_size=page_size)

    async def obligations(self, *, from_day: date | None = None, to_day: date | None = None,
                          fund_code: str | None = None) -> Obligations:
        """What the schedules say is owed: overdue items first (due before today, unpaid),
        then due and scheduled amounts per month and fund in the window [from, to]."""
        today = self.today()
        overdue = await self.schedule.overdue(before=deposit_day(today), fund_code=fund_code)
        items = await self.schedule.open_items(
            due_from=deposit_day(from_day) if from_day else None,
            due_before=deposit_day(to_day + timedelta(days=1)) if to_day else None,
            fund_code=fund_code)
        months: dict[tuple[date, str, str], list[ScheduleItem]] = defaultdict(list)
        for item in items:
            day = as_day(item.due_date)
            months[(day.replace(day=1), item.fund_code, item.currency)].append(item)
        rows = []
        for (month, fund, currency), group in sorted(months.items()):
            rows.append(MonthObligation(
                month=month, fund_code=fund, currency=currency,
                due=sum((i.amount or ZERO for i in group
                         if i.status is ScheduleItemStatus.DUE), ZERO),
                scheduled=sum((i.amount or ZERO for i in group
                               if i.status is ScheduleItemStatus.SCHEDULED), ZERO),
                items=len(group), unpriced_items=sum(1 for i in group if i.amount is None)))
        return Obligations(overdue=overdue, months=rows)

    # payouts ---------------------------------------------------------------------------

    async def pay(self, investment: Investment, number: int, *, paid_on: date, reference: str,
                  request_key: str, actor: Actor, amount: Decimal | None = None) -> Payout:
        """Record the payment of one schedule item, exactly once.

        The ledger entry is keyed on the item, so of any number of concurrent requests (with
        any keys) one books it; the others find it booked. The same `Idempotency-Key` again
        answers the first result (and finishes a payout interrupted before the item was
        marked); another key answers 409 `ALREADY_PAID`.
        """
        assert investment.id is not None
        item = await self.schedule.item(investment.id, number)
        if item.status is ScheduleItemStatus.PAID:
            if item.payout_key == request_key and item.ledger_entry_id is not None:
                entry = await self.ledger.by_key(payout_key(investment.id, number))
                assert entry is not None
                return Payout(item, entry, created=False)
            raise self._already_paid(item)
        booked = await self.ledger.by_key(payout_key(investment.id, number))
        if booked is not None:
            if booked.request_key != request_key:
                raise self._already_paid(item)
            return Payout(await self._mark_paid(item, booked, actor=actor), booked, False)
        self._check_payable(item, paid_on=paid_on, amount=amount)
        assert item.amount is not None
        entry, created = await self.ledger.book(LedgerEntry(
            kind=_PAID_KIND[item.kind], direction=Direction.OUT,
            client_id=item.client_id, investment_id=investment.id,
            investment_ref=investment.investment_id, fund_code=item.fund_code,
            schedule_number=item.number, amount=item.amount, currency=item.currency,
            effective_date=deposit_day(paid_on), booked_at=self.clock(), actor_id=actor.id,
            actor_type=actor.type, idempotency_key=payout_key(investment.id, number),
            request_key=request_key, reference=reference))
        if not created and entry.request_key != request_key:
            raise self._already_paid(item)
        paid = await self._mark_paid(item, entry, actor=actor)
        if paid.kind is ScheduleItemKind.PRINCIPAL:
            await self._close_if_repaid(investment, actor=actor)
        return Payout(paid, entry, created=created)

    def _already_paid(self, item: ScheduleItem) -> Conflict:
        return Conflict("this schedule item is already paid", code="ALREADY_PAID",
                        details={"number": item.number,
                                 "paid_on": as_day(item.paid_on).isoformat()
                                 if item.paid_on else None,
                                 "reference": item.reference})

    def _check_payable(self, item: ScheduleItem, *, paid_on: date,
                       amount: Decimal | None) -> None:
        details = {"number": item.number, "status": item.status.value,
                   "due_date": as_day(item.due_date).isoformat()}
        if item.status is ScheduleItemStatus.CANCELLED:
            raise Conflict("this schedule item was cancelled: nothing is owed on it",
                           code="ITEM_CANCELLED", details=details)
        if item.status is ScheduleItemStatus.SCHEDULED:
            raise Conflict("this schedule item is not due yet", code="NOT_DUE",
                           details=details)
        if item.amount is None:
            raise Conflict("this performance share has no amount yet", code="AMOUNT_NOT_SET",
                           details=details)
        if amount is not None and amount != item.amount:
            raise Conflict("the amount differs from the amount the schedule owes",
                           code="AMOUNT_MISMATCH",
                           details={**details, "amount": format(item.amount, "f"),
                                    "requested": format(amount, "f")})
        if paid_on > self.today():
            raise InvalidData("a payout cannot be recorded for a future day",
                              code="PAID_ON_IN_FUTURE", details={"paid_on": paid_on.isoformat()})
        if paid_on < as_day(item.due_date) - timedelta(days=31):
            raise InvalidData("a payout more than a month before its due date is not a "
                              "payout of this item", code="PAID_ON_TOO_EARLY",
                              details={**details, "paid_on": paid_on.isoformat()})

    async def _mark_paid(self, item: ScheduleItem, entry: LedgerEntry, *,
                         actor: Actor) -> ScheduleItem:
        """The item as paid by `entry`, with its audit record; a no-op when already so."""
        if item.status is ScheduleItemStatus.PAID:
            return item
        assert entry.id is not None and item.id is not None
        try:
            return await self.audit.update(
                self.schedule, item,
                {"status": ScheduleItemStatus.PAID, "paid_on": entry.effective_date,
                 "reference": entry.reference, "ledger_entry_id": entry.id,
                 "payout_key": entry.request_key},
                actor=actor, action=f"schedule_item.paid.{item.kind.value}",
                entity_type="schedule_item", extra_filter={"status": item.status.value})
        except VersionConflict:
            # A twin (the same request retried, or the lifecycle pass) marked it first.
            current = await self.schedule.get(item.id)
            if current.ledger_entry_id == entry.id:
                return current
            raise

    async def _close_if_repaid(self, investment: Investment, *, actor: Actor) -> Investment:
        current = await self.investments.get(investment.id)  # type: ignore[arg-type]
        if current.status is not InvestmentStatus.MATURED:
            return current
        return await self.audit.update(
            self.investments, current,
            {"status": InvestmentStatus.CLOSED, "closed_at": self.clock()}, actor=actor,
            action="investment.status.closed", entity_type="investment",
            entity_id=lambda inv: inv.investment_id)

    # the early-redemption request ------------------------------------------------------

    async def request_redemption(self, investment: Investment, *,
                                 actor: Actor) -> ScheduleItem:
        """A client asks for the principal back: refused before maturity (`MINIMUM_HOLD`);
        from maturity the principal is a due item like the others, which is returned."""
        assert investment.id is not None
        if investment.status is InvestmentStatus.PENDING or investment.maturity_date is None:
            raise Conflict("the deposit of this investment is not confirmed yet",
                           code="NOT_CONFIRMED",
                           details={"investment_id": investment.investment_id})
        if investment.status is InvestmentStatus.CANCELLED:
            raise Conflict("this investment was cancelled", code="INVESTMENT_CANCELLED")
        maturity = as_day(investment.maturity_date)
        if self.today() < maturity:
            await self.audit.record(actor, action="investment.redemption.refused",
                                    entity_type="investment",
                                    entity_id=investment.investment_id,
                                    reason=f"minimum hold until {maturity.isoformat()}")
            raise Conflict(f"the principal can be redeemed from {maturity.isoformat()}, at "
                           "the end of the commitment", code="MINIMUM_HOLD",
                           details={"maturity_date": maturity.isoformat(),
                                    "investment_id": investment.investment_id})
        items = await self.schedule.of_investment(investment.id)
        principal = next(i for i in items if i.kind is ScheduleItemKind.PRINCIPAL)
        await self.audit.record(actor, action="investment.redemption.requested",
                                entity_type="investment", entity_id=investment.investment_id)
        return principal

    # the lifecycle pass ----------------------------------------------------------------

    async def lifecycle(self, *, actor: Actor | None = None, owner: str = "lifecycle",
                        ) -> LifecycleReport:
        """Apply every transition due today, once; skipped while another pass holds the
        lease."""
        actor = actor or Actor.system()
        report = LifecycleReport(day=self.today())
        if not await self.locks.acquire(LIFECYCLE_LEASE, owner=owner,
                                        seconds=LIFECYCLE_LEASE_SECONDS):
            report.skipped = True
            return report
        try:
            await self._lifecycle(report, actor)
        finally:
            await self.locks.release(LIFECYCLE_LEASE, owner=owner)
        return report

    async def complete_interrupted(self, *, actor: Actor) -> tuple[int, int]:
        """Finish what a fault (or a backup read collection by collection) left half-done:
        confirmed investments without their schedule or subscription entry, and payouts booked
        in the ledger but not marked on their item. Both are derived from what is stored, and
        keyed, so this is safe to run at any time. Returns (items built, payouts finished)."""
        investments = await self.investments.in_statuses(INVESTED_STATUSES)
        ids = [i.id for i in investments if i.id is not None]
        scheduled = await self.schedule.investments_with_items(ids)
        subscribed = await self.ledger.by_keys([subscription_key(i) for i in investments])
        built = 0
        for investment in investments:
            if investment.id not in scheduled or subscription_key(investment) not in subscribed:
                built += await self.open_contract(investment, actor=actor)
        finished = await self._finish_payouts(actor)
        await self.audit.relay(repositories=[self.schedule])
        return built, finished

    async def _lifecycle(self, report: LifecycleReport, actor: Actor) -> None:
        today = report.day
        end_of_today = datetime.combine(today, time.min, tzinfo=UTC)
        report.schedules_built, report.payouts_completed = await self.complete_interrupted(
            actor=actor)
        for item in await self.schedule.scheduled_by(end_of_today):
            await self.audit.update(
                self.schedule, item, {"status": ScheduleItemStatus.DUE}, actor=actor,
                action="schedule_item.due", entity_type="schedule_item", deliver=False)
            report.items_due += 1
        await self._price_performance_shares(report, actor)
        for investment in await self.investments.in_statuses(
                {InvestmentStatus.INCUBATING, InvestmentStatus.ACTIVE}):
            dates = self.dates_of(investment)
            state = InvestmentStatus(lifecycle_state_on(dates, today).value)
            if state is not investment.status:
                await self.audit.update(
                    self.investments, investment, {"status": state}, actor=actor,
                    action=f"investment.status.{state.value}", entity_type="investment",
                    entity_id=lambda inv: inv.investment_id, deliver=False)
                report.investments_moved[state.value] += 1
        matured = await self.investments.in_statuses({InvestmentStatus.MATURED})
        repaid = {item.investment_id for item in await self.schedule.of_investments(
            [i.id for i in matured if i.id is not None])
            if item.kind is ScheduleItemKind.PRINCIPAL and item.status is ScheduleItemStatus.PAID}
        for investment in matured:
            if investment.id in repaid:
                await self._close_if_repaid(investment, actor=actor)
                report.investments_moved[InvestmentStatus.CLOSED.value] += 1
        await self.audit.relay(repositories=[self.schedule, self.investments])

    async def _price_performance_shares(self, report: LifecycleReport, actor: Actor) -> None:
        """Set the amount of each due performance-share item without one (module docstring)."""
        unpriced = await self.schedule.unpriced_performance_shares()
        if not unpriced:
            return
        investment_ids = sorted({item.investment_id for item in unpriced})
        investments = await self.investments.by_ids(investment_ids)
        items = await self.schedule.of_investments(investment_ids)
        shares = await self.valuation.performance_shares_of(investments, items)
        for item in unpriced:
            share = shares.get(item.id) if item.id is not None else None
            if share is None:
                report.shares_unpriced += 1
                continue
            if share.amount > 0:
                await self.audit.update(
                    self.schedule, item, {"amount": share.amount}, actor=actor,
                    action="schedule_item.priced", entity_type="schedule_item",
                    extra_filter={"amount": None}, deliver=False)
                report.shares_priced += 1
            else:
                await self.audit.update(
                    self.schedule, item,
                    {"amount": ZERO, "status": ScheduleItemStatus.CANCELLED}, actor=actor,
                    action="schedule_item.no_gain", entity_type="schedule_item",
                    reason="no gain above the high-water mark",
                    extra_filter={"amount": None}, deliver=False)
                report.shares_without_gain += 1

    async def _finish_payouts(self, actor: Actor) -> int:
        """Items whose payout entry was booked but which were not marked paid (a payout
        interrupted between its two steps)."""
        open_items = await self.schedule.open_items()
        booked = await self.ledger.by_keys(
            [payout_key(item.investment_id, item.number) for item in open_items])
        finished = 0
        for item in open_items:
            entry = booked.get(payout_key(item.investment_id, item.number))
            if entry is not None:
                await self._mark_paid(item, entry, actor=actor)
                finished += 1
        return finished

    def dates_of(self, investment: Investment) -> ContractDates:
        terms = self.funds.terms_on(investment.fund_code, as_day(investment.deposit_date))
        return contract_dates(terms, as_day(investment.deposit_date))

