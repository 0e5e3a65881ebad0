"""Investments: creation under the fund rules, status changes, performance from MT5 data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bson import ObjectId

from backend.errors import (
    Conflict,
    DuplicateEntity,
    InvalidData,
    NotFound,
    TransitionNotAllowed,
    VersionConflict,
)
from backend.funds import FundCatalog
from backend.models.investments import (
    INVESTED_STATUSES,
    Investment,
    InvestmentCreate,
    InvestmentStatus,
    deposit_day,
)
from backend.models.mt5_accounts import Mt5Account, Mt5AccountCreate
from backend.models.users import AmlStatus, KycStatus, User, UserType
from backend.money.schedule import contract_dates, lifecycle_state_on
from backend.repositories.base import Clock, Page, utcnow
from backend.repositories.investments import InvestmentFilter
from backend.repositories.registry import Repositories
from backend.services.audit import Actor, AuditTrail
from backend.services.contracts import ContractService
from backend.services.mt5_accounts import Mt5AccountService

_S = InvestmentStatus
#: The moves an admin makes through the status route. Confirming a pending investment names
#: `incubating` (or `active`); the investment then takes the state its dates give. The later
#: moves (incubating -> active -> matured -> closed) are the lifecycle pass's and the
#: principal's payout's, never an admin's. An investment entered by mistake is cancelled with
#: a reason, which cancels its open schedule items and reverses its subscription in the ledger
#: (refused once anything was paid out).
STATUS_TRANSITIONS: dict[InvestmentStatus, frozenset[InvestmentStatus]] = {
    _S.PENDING: frozenset({_S.INCUBATING, _S.ACTIVE, _S.CANCELLED}),
    _S.INCUBATING: frozenset({_S.CANCELLED}),
    _S.ACTIVE: frozenset({_S.CANCELLED}),
    _S.MATURED: frozenset(),
    _S.CLOSED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REDEEMED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class CreatedInvestment:
    investment: Investment
    created: bool


@dataclass(frozen=True, slots=True)
class InvestmentWithClient:
    investment: Investment
    client_name: str | None


def new_investment_id(day: datetime) -> str:
    return f"INV-{day:%Y%m%d}-{secrets.token_hex(4).upper()}"


class InvestmentService:
    def __init__(self, repos: Repositories, funds: FundCatalog, audit: AuditTrail,
                 mt5: Mt5AccountService, contracts: ContractService, *,
                 clock: Clock = utcnow) -> None:
        self.contracts = contracts
        self.funds = funds
        self.audit = audit
        self.clock = clock
        self.repo = repos.investments
        self.users = repos.users
        self.mt5 = mt5
        self.mt5_accounts = repos.mt5_accounts

    async def _eligible_client(self, client_id: ObjectId) -> User:
        client = await self.users.find_by_id(client_id)
        if client is None or client.user_type is not UserType.CLIENT:
            raise InvalidData("there is no such client", code="CLIENT_NOT_FOUND",
                              details={"client_id": str(client_id)})
        if not client.is_active:
            raise InvalidData("the client is deactivated", code="CLIENT_INACTIVE",
                              details={"client_id": str(client_id)})
        if client.kyc_status is not KycStatus.APPROVED:
            raise InvalidData("the client's KYC is not approved", code="KYC_NOT_APPROVED",
                              details={"client_id": str(client_id),
                                       "kyc_status": client.kyc_status.value})
        if client.aml_status is AmlStatus.REJECTED:
            raise InvalidData("the client's AML check was rejected", code="AML_REJECTED",
                              details={"client_id": str(client_id)})
        return client

    async def _replay(self, key: str, data: InvestmentCreate) -> CreatedInvestment | None:
        existing = await self.repo.by_idempotency_key(key)
        if existing is None:
            return None
        same = (existing.client_id == data.client_id and existing.fund_code == data.fund_code
                and existing.principal_amount == data.principal_amount
                and existing.currency == data.currency
                and existing.deposit_date == deposit_day(data.deposit_date))
        if not same:
            raise Conflict("this Idempotency-Key was used for a different investment",
                           code="IDEMPOTENCY_KEY_REUSED",
                           details={"investment_id": existing.investment_id})
        await self._open(existing, actor=Actor.system())
        return CreatedInvestment(existing, created=False)

    async def create(
        self,
        data: InvestmentCreate,
        *,
        actor: Actor,
        idempotency_key: str | None = None,
        mt5_account: Mt5AccountCreate | None = None,
    ) -> CreatedInvestment:
        """Record an investment once.

        The same idempotency key returns the first investment; the same investment under
        another key is refused by the duplicate-prevention index. The client's MT5 account for
        the fund is linked; when there is none and `mt5_account` is given, it is created.
        """
        if idempotency_key:
            replay = await self._replay(idempotency_key, data)
            if replay:
                return replay
        terms = self.funds.check_subscription(
            data.fund_code, data.principal_amount, data.currency, on=data.deposit_date,
            invitation_reason=data.invitation_reason)
        if data.deposit_date > self.clock().date():
            raise InvalidData("the deposit date is in the future", code="DEPOSIT_DATE_IN_FUTURE",
                              details={"deposit_date": data.deposit_date.isoformat()})
        await self._eligible_client(data.client_id)
        mapping = await self.mt5_accounts.for_client_fund(data.client_id, data.fund_code)
        if (mapping is None and mt5_account is not None
                and (mt5_account.client_id, mt5_account.fund_code)
                != (data.client_id, data.fund_code)):
            raise InvalidData("the MT5 account must be the client's, for the same fund",
                                  code="MT5_ACCOUNT_MISMATCH")
        now = self.clock()
        dates = contract_dates(terms, data.deposit_date)
        confirmed = data.deposit_received
        investment = Investment(
            id=ObjectId(),
            investment_id=new_investment_id(now),
            client_id=data.client_id,
            fund_code=data.fund_code,
            principal_amount=data.principal_amount,
            currency=data.currency,
            deposit_date=deposit_day(data.deposit_date),
            terms_version=terms.terms_version,
            incubation_end_date=deposit_day(dates.incubation_end_date) if confirmed else None,
            maturity_date=deposit_day(dates.maturity_date) if confirmed else None,
            invitation_reason=data.invitation_reason,
            status=(InvestmentStatus(lifecycle_state_on(dates, now.date()).value)
                    if confirmed else InvestmentStatus.PENDING),
            current_value=data.principal_amount,
            gain_amount=Decimal("0"),
            return_pct=Decimal("0"),
            mt5_account_id=mapping.id if mapping else None,
            idempotency_key=idempotency_key,
            created_by=actor.id or ObjectId("000000000000000000000000"),
            created_at=now,
            updated_at=now,
            version=1,
        )
        new_mapping = None
        if mapping is None and mt5_account is not None:
            new_mapping = self.mt5.build(mt5_account.model_copy(
                update={"investment_id": investment.id}))
            new_mapping.id = ObjectId()
            investment.mt5_account_id = new_mapping.id
        try:
            # The record stays in the document's outbox until every step is done, so a step
            # that fails can take the investment back out before anyone saw it audited.
            created = await self.audit.create(
                self.repo, investment, actor=actor, action="investment.create",
                entity_type="investment", entity_id=lambda inv: inv.investment_id,
                deliver=False)
        except DuplicateEntity as error:
            if (error.details or {}).get("collection") != "investments":
                raise
            # A parallel request with the same key may have won on either unique index.
            if idempotency_key:
                replay = await self._replay(idempotency_key, data)
                if replay:
                    return replay
            raise DuplicateEntity(
                "this investment is already recorded (same client, fund, amount and date)",
                field=error.field, details={"field": error.field,
                                            "client_id": str(data.client_id),
                                            "fund_code": data.fund_code}) from error
        try:
            if new_mapping is not None:
                await self.mt5.add_mapping(new_mapping, actor=actor)
            elif mapping is not None and mapping.investment_id is None:
                await self._link(mapping, created, actor=actor)
        except BaseException:
            await self.repo.withdraw_unaudited(created.id)  # type: ignore[arg-type]
            raise
        await self.audit.deliver(self.repo, created.id)
        await self._open(created, actor=actor)
        return CreatedInvestment(created, created=True)

    async def _open(self, investment: Investment, *, actor: Actor) -> None:
        """The contract of a confirmed investment: its schedule and its subscription, keyed
        so that a repeat (the same request retried after a fault) completes what is missing."""
        if investment.status in INVESTED_STATUSES:
            await self.contracts.open_contract(investment, actor=actor)

    async def _link(self, mapping: Mt5Account, investment: Investment, *, actor: Actor) -> None:
        """Point an unlinked MT5 mapping at its first investment, with its own audit record;
        a mapping someone else linked meanwhile is left as it is."""
        try:
            await self.audit.update(
                self.mt5.repo, mapping, {"investment_id": investment.id}, actor=actor,
                action="mt5_account.link", entity_type="mt5_account",
                extra_filter={"investment_id": None})
        except VersionConflict:
            return

    async def get(self, id_: ObjectId | str) -> Investment:
        return await self.repo.get(id_)

    async def get_for_client(self, id_: ObjectId | str, client_id: ObjectId) -> Investment:
        """A client's own investment; someone else's is answered as missing, so ids cannot be
        probed."""
        investment = await self.repo.get(id_)
        if investment.client_id != client_id:
            raise NotFound("no such investment", details={"id": str(id_)})
        return investment

    async def set_status(self, id_: ObjectId | str, status: InvestmentStatus, *, actor: Actor,
                         reason: str | None = None, expected_version: int | None = None,
                         deposit_date: date | None = None) -> Investment:
        current = await self.repo.get(id_)
        if status is InvestmentStatus.CANCELLED and not reason:
            raise InvalidData("a cancellation needs a reason", code="REASON_REQUIRED")
        if status not in STATUS_TRANSITIONS[current.status]:
            raise TransitionNotAllowed(
                f"an investment cannot move from {current.status.value} to {status.value}",
                details={"from": current.status.value, "to": status.value,
                         "allowed": sorted(s.value for s in STATUS_TRANSITIONS[current.status])})
        changes: dict[str, Any] = {"status": status.value, "status_reason": reason}
        if status is InvestmentStatus.CANCELLED:
            assert reason is not None
            changes["cancelled_at"] = self.clock()
            if current.status in INVESTED_STATUSES:
                await self.contracts.cancel_contract(current, actor=actor, reason=reason)
        else:
            changes.update(self._confirmation(current, deposit_date))
            status = InvestmentStatus(changes["status"])
        updated = await self.audit.update(
            self.repo, current, changes, actor=actor,
            action=f"investment.status.{status.value}", entity_type="investment", reason=reason,
            expected_version=expected_version, entity_id=lambda inv: inv.investment_id)
        await self._open(updated, actor=actor)
        return updated

    def _confirmation(self, current: Investment, deposit_date: date | None) -> dict[str, Any]:
        """A pending investment's deposit has arrived: its dates, terms and state."""
        day = deposit_date or current.deposit_date.date()
        if day > self.clock().date():
            raise InvalidData("the deposit date is in the future", code="DEPOSIT_DATE_IN_FUTURE",
                              details={"deposit_date": day.isoformat()})
        terms = self.funds.terms_on(current.fund_code, day)
        dates = contract_dates(terms, day)
        return {"status": lifecycle_state_on(dates, self.clock().date()).value,
                "deposit_date": deposit_day(day), "terms_version": terms.terms_version,
                "incubation_end_date": deposit_day(dates.incubation_end_date),
                "maturity_date": deposit_day(dates.maturity_date)}

    async def update_performance(self, investment: Investment, current_value: Decimal, *,
                                 at: datetime, units: Decimal | None = None,
                                 awaiting_deposit: bool | None = None) -> Investment:
        """Current value, gain and return from the valuation of its MT5 account, with the units
        held and whether its deposit is awaited. Valuations are not audited one by one (they
        come every sync); the equity history, deals and ledger they come from are kept."""
        # An account can show negative equity; the investment is then worth nothing, and its
        # gain and return say so consistently.
        value = max(current_value, Decimal("0"))
        gain, return_pct = investment.performance(value)
        return await self.repo.update(
            investment.id,  # type: ignore[arg-type]
            {"current_value": value, "gain_amount": gain,
             "return_pct": return_pct, "performance_updated_at": at, "units": units,
             "awaiting_deposit": awaiting_deposit},
            expected_version=investment.version)

    async def list_with_client_names(
        self, *, client_id: ObjectId | None = None, fund_code: str | None = None,
        status: InvestmentStatus | None = None, page: int = 1, page_size: int = 20,
    ) -> tuple[list[InvestmentWithClient], int]:
        """A page of investments with their clients' names in one round trip."""
        rows, total = await self.repo.list_with_client_names(
            InvestmentFilter(client_id=client_id, fund_code=fund_code, status=status),
            page=page, page_size=page_size)
        return [InvestmentWithClient(investment, name) for investment, name in rows], total

    async def search(self, **filters: Any) -> Page[Investment]:
        return await self.repo.search(**filters)
