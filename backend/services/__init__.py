"""Business rules, below the API: the API, the scripts and the jobs all go through these."""

from __future__ import annotations

from backend.db.types import Database
from backend.funds import FundCatalog, default_catalog
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.security.crypto import FieldCipher
from backend.services.account_security import AccountSecurityService
from backend.services.audit import Actor, AuditTrail
from backend.services.auth import AuthService
from backend.services.contracts import ContractService
from backend.services.crm import CrmService
from backend.services.documents import DocumentService
from backend.services.fund_overview import FundOverviewService
from backend.services.investments import InvestmentService
from backend.services.mt5_accounts import Mt5AccountService
from backend.services.reconciliation import ReconciliationService
from backend.services.sign_in_guard import SignInGuard
from backend.services.statements import StatementService
from backend.services.users import UserService
from backend.services.valuation import ValuationService
from backend.settings import Settings

__all__ = ["Actor", "Services"]


class Services:
    """Every service over one database, sharing one clock and one audit trail."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        funds: FundCatalog | None = None,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.funds = funds or default_catalog()
        self.cipher = cipher or FieldCipher.from_settings(settings)
        self.repos = repos = Repositories(db, cipher=self.cipher, clock=clock)
        self.audit = AuditTrail(repos.audit_log, clock=clock)
        self.audit.watch(repos.users, repos.investments, repos.mt5_accounts, repos.prospects,
                         repos.documents, repos.google_sessions)
        self.sign_in_guard = SignInGuard(repos, settings, self.audit, clock=clock)
        self.users = UserService(repos, settings, self.audit, clock=clock,
                                 guard=self.sign_in_guard)
        self.auth = AuthService(repos, settings, clock=clock, audit=self.audit,
                                guard=self.sign_in_guard)
        self.account_security = AccountSecurityService(repos, settings, self.audit,
                                                       self.sign_in_guard, clock=clock)
        self.mt5 = Mt5AccountService(repos, self.audit, clock=clock)
        self.valuation = ValuationService(repos, self.funds, clock=clock)
        self.contracts = ContractService(repos, self.funds, self.audit, clock=clock,
                                         valuation=self.valuation)
        self.investments = InvestmentService(repos, self.funds, self.audit, self.mt5,
                                             self.contracts, clock=clock)
        self.crm = CrmService(repos, self.audit, self.users, clock=clock)
        self.documents = DocumentService(repos, settings, self.audit, clock=clock)
        self.reconciliation = ReconciliationService(repos)
        self.fund_overview = FundOverviewService(repos, self.valuation, self.funds, clock=clock)
        self.statements = StatementService(repos, self.valuation,
                                           fund_manager=settings.fund_manager_name, clock=clock)
