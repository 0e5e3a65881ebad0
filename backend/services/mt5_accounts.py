"""MT5 account mappings: which broker account holds which client's money in which fund."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from backend.errors import InvalidData
from backend.models.mt5_accounts import Mt5Account, Mt5AccountCreate, Mt5AccountUpdate, SyncStatus
from backend.models.users import UserType
from backend.repositories.base import Clock, utcnow
from backend.repositories.mt5_accounts import Mt5AccountRepository
from backend.repositories.users import UserRepository
from backend.security.crypto import FieldCipher
from backend.services.audit import Actor, AuditTrail


class Mt5AccountService:
    def __init__(self, db: Any, cipher: FieldCipher, audit: AuditTrail, *,
                 clock: Clock = utcnow) -> None:
        self.clock = clock
        self.audit = audit
        self.repo = Mt5AccountRepository(db, cipher=cipher, clock=clock)
        self.users = UserRepository(db, clock=clock)

    def build(self, data: Mt5AccountCreate) -> Mt5Account:
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
            created_at=now,
            updated_at=now,
            version=1,
        )

    async def _check_client(self, client_id: ObjectId) -> None:
        client = await self.users.find_one({"_id": client_id})
        if client is None or client.user_type is not UserType.CLIENT:
            raise InvalidData("the MT5 account must belong to an existing client",
                              code="CLIENT_NOT_FOUND", details={"client_id": str(client_id)})

    async def create_mapping(self, data: Mt5AccountCreate, *, actor: Actor,
                             session: AsyncClientSession | None = None) -> Mt5Account:
        await self._check_client(data.client_id)
        account = self.build(data)
        if session is not None:
            created = await self.repo.create(account, session=session)
            await self.audit.record(actor, action="mt5_account.create",
                                    entity_type="mt5_account", entity_id=str(created.id),
                                    after=created, session=session)
            return created

        return await self.audit.create(self.repo, account, actor=actor,
                                       action="mt5_account.create", entity_type="mt5_account")

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
