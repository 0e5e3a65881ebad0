"""Every repository over one database, built once with one clock.

The services receive this instead of a database handle, so nothing above the repositories
holds a driver object.
"""

from __future__ import annotations

from backend.db.types import Database
from backend.repositories.admin_google_sessions import AdminGoogleSessionRepository
from backend.repositories.audit_log import AuditLogRepository
from backend.repositories.backup_runs import BackupRunRepository
from backend.repositories.base import Clock, utcnow
from backend.repositories.crm_prospects import CrmProspectRepository
from backend.repositories.documents import DocumentRepository, KycFileStore
from backend.repositories.investments import InvestmentRepository
from backend.repositories.ledger_entries import LedgerRepository
from backend.repositories.locks import LockRepository
from backend.repositories.mt5_accounts import Mt5AccountRepository
from backend.repositories.mt5_deals import Mt5DealRepository
from backend.repositories.mt5_equity_history import Mt5EquityHistoryRepository
from backend.repositories.schedule_items import ScheduleItemRepository
from backend.repositories.sessions import SessionRepository
from backend.repositories.throttles import ThrottleRepository
from backend.repositories.users import UserRepository
from backend.security.crypto import FieldCipher


class Repositories:
    def __init__(self, db: Database, *, cipher: FieldCipher, clock: Clock = utcnow) -> None:
        self.clock = clock
        self.audit_log = AuditLogRepository(db, clock=clock)
        self.users = UserRepository(db, clock=clock)
        self.sessions = SessionRepository(db, clock=clock)
        self.investments = InvestmentRepository(db, clock=clock)
        self.mt5_accounts = Mt5AccountRepository(db, cipher=cipher, clock=clock)
        self.deals = Mt5DealRepository(db, clock=clock)
        self.equity = Mt5EquityHistoryRepository(db, clock=clock)
        self.prospects = CrmProspectRepository(db, clock=clock)
        self.documents = DocumentRepository(db, clock=clock)
        self.kyc_files = KycFileStore(db)
        self.google_sessions = AdminGoogleSessionRepository(db, clock=clock)
        self.schedule = ScheduleItemRepository(db, clock=clock)
        self.ledger = LedgerRepository(db, clock=clock)
        self.locks = LockRepository(db, clock=clock)
        self.throttles = ThrottleRepository(db, clock=clock)
        self.backup_runs = BackupRunRepository(db, clock=clock)
