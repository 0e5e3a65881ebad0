"""MT5 account mappings: which broker account holds which client's money in which fund."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from backend.errors import InvalidData
from backend.models.mt5_accounts import Mt5Account, Mt5AccountCreate, Mt5AccountUpdate, SyncStatus
from backend.models.mt5_deals import Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.models.users import UserType
from backend.repositories.base import Clock, Page, object_id, utcnow
from backend.repositories.registry import Repositories
from backend.services.audit import Actor, AuditTrail
from backend.services.idempotency import Created, create_once


class Mt5AccountService:
    def __init__(self, repos: Repositories, audit: AuditTrail, *,
                 clock: Clock = utcnow) -> None:
        self.clock = clock
        self.audit = audit
        self.repo = repos.mt5_accounts
        self.users = repos.users
        self.deals = repos.deals
        self.equity = repos.equity

    def build(self, data: Mt5AccountCreate, *, idempotency_key: str | None = None) -> Mt5Account:
        now = self.clock()
        return Mt5Account(
            account_id=data.account_id,
            client_id=data.client_id,
            fund_code=data.fund_code,
            investment_id=data.investment_id,
            mt5_login=data.mt5_login,
            broker_code=data.broker_code,
            server=data.server,
            **self.repo.seal_password(data.investor_password.get_secret_value()),
            currency=data.currency,
            is_active=True,
            sync_status=SyncStatus.NEVER_SYNCED,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            version=1,
        )

    async def _check_client(self, client_id: ObjectId) -> None:
        client = await self.users.find_by_id(client_id)
        if client is None or client.user_type is not UserType.CLIENT:
            raise InvalidData("the MT5 account must belong to an existing client",
                              code="CLIENT_NOT_FOUND", details={"client_id": str(client_id)})

    async def create_mapping(self, data: Mt5AccountCreate, *, actor: Actor) -> Mt5Account:
        return (await self.create_mapping_once(data, actor=actor)).item

    async def create_mapping_once(self, data: Mt5AccountCreate, *, actor: Actor,
                                  idempotency_key: str | None = None) -> Created[Mt5Account]:
        """Map an account once per Idempotency-Key (see `backend/services/idempotency.py`)."""

        async def build() -> Mt5Account:
            await self._check_client(data.client_id)
            return self.build(data, idempotency_key=idempotency_key)

        def same(account: Mt5Account) -> bool:
            return (account.account_id, account.client_id, account.fund_code,
                    account.investment_id, account.mt5_login, account.broker_code,
                    account.server, account.currency) == (
                data.account_id, data.client_id, data.fund_code, data.investment_id,
                data.mt5_login, data.broker_code, data.server, data.currency)

        return await create_once(
            self.audit, self.repo, build, key=idempotency_key, same=same, what="MT5 mapping",
            name=lambda account: {"account_id": account.account_id}, actor=actor,
            action="mt5_account.create", entity_type="mt5_account")

    async def add_mapping(self, account: Mt5Account, *, actor: Actor) -> Mt5Account:
        """Store a mapping built by `build` (the caller checked its client)."""
        return await self.audit.create(self.repo, account, actor=actor,
                                       action="mt5_account.create", entity_type="mt5_account")

    async def for_client(self, client_id: ObjectId) -> list[Mt5Account]:
        return await self.repo.for_client(client_id)

    async def get(self, account_id: ObjectId | str) -> Mt5Account:
        return await self.repo.get(account_id)

    async def search(self, **filters: Any) -> Page[Mt5Account]:
        return await self.repo.search(**filters)

    async def update_mapping(self, account_id: ObjectId | str, data: Mt5AccountUpdate, *,
                             actor: Actor) -> Mt5Account:
        current = await self.repo.get(account_id)
        changes = data.model_dump(exclude_unset=True, exclude={"version", "investor_password"})
        if data.investor_password is not None:
            changes.update(self.repo.seal_password(data.investor_password.get_secret_value()))
        for required in ("broker_code", "server", "is_active"):
            if required in changes and changes[required] is None:
                raise InvalidData(f"{required} cannot be empty", code="FIELD_REQUIRED",
                                  details={"field": required})
        if not changes:
            return current
        return await self.audit.update(self.repo, current, changes, actor=actor,
                                       action="mt5_account.update", entity_type="mt5_account",
                                       expected_version=data.version)

    async def equity_history(self, id_: ObjectId | str, *, page: int = 1,
                             page_size: int = 50) -> Page[Mt5EquityPoint]:
        """The account's stored daily equity points, newest day first (`_history_page`)."""
        account_id = object_id(id_)
        return await self._history_page(
            account_id, await self.equity.page_of(account_id, page=page, page_size=page_size))

    async def deal_history(self, id_: ObjectId | str, *, page: int = 1,
                           page_size: int = 50) -> Page[Mt5Deal]:
        """The account's stored deals, newest first (`_history_page`)."""
        account_id = object_id(id_)
        return await self._history_page(
            account_id, await self.deals.page_of(account_id, page=page, page_size=page_size))

    async def _history_page[T](self, account_id: ObjectId, found: Page[T]) -> Page[T]:
        """A page of an account's history, read in two round trips (the count and the page):
        the account itself is read only when it has no history at all, to tell an account
        never synced (an empty page) from one that does not exist (`NotFound`). Mappings are
        never deleted, so history always has its account."""
        if found.total == 0:
            await self.repo.get(account_id)
        return found
