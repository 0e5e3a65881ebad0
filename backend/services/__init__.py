"""Business rules, below the API: the API, the scripts and the jobs all go through these."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from backend.funds import FundCatalog, default_catalog
from backend.repositories.base import Clock, utcnow
from backend.security.crypto import FieldCipher
from backend.services.account_security import AccountSecurityService
from backend.services.audit import Actor, AuditTrail
from backend.services.auth import AuthService
from backend.services.crm import CrmService
from backend.services.documents import DocumentService
from backend.services.investments import InvestmentService
from backend.services.mt5_accounts import Mt5AccountService
from backend.services.sign_in_guard import SignInGuard
from backend.services.users import UserService
from backend.settings import Settings

__all__ = ["Actor", "Services"]


class Services:
    """Every service over one database, sharing one clock and one audit trail."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        settings: Settings,
        *,
        clock: Clock = utcnow,
        funds: FundCatalog | None = None,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.funds = funds or default_catalog()
        self.cipher = cipher or FieldCipher.from_settings(settings)
        self.audit = AuditTrail(db, clock=clock)
        self.sign_in_guard = SignInGuard(db, settings, self.audit, clock=clock)
        self.users = UserService(db, settings, self.audit, clock=clock, guard=self.sign_in_guard)
        self.auth = AuthService(db, settings, clock=clock, audit=self.audit,
                                guard=self.sign_in_guard)
        self.account_security = AccountSecurityService(db, settings, self.audit,
                                                       self.sign_in_guard, clock=clock)
        self.mt5 = Mt5AccountService(db, self.cipher, self.audit, clock=clock)
        self.investments = InvestmentService(db, self.funds, self.audit, self.mt5, clock=clock)
        self.crm = CrmService(db, self.audit, self.users, clock=clock)
        self.documents = DocumentService(db, settings, self.audit, clock=clock)
