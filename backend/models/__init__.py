"""Pydantic models: the stored document of each collection and the API's request and
response shapes. A collection's story: `schemas/<name>.json`, `backend/models/<name>.py`,
`backend/repositories/<name>.py`."""

from __future__ import annotations

from backend.models._base import StoredDocument
from backend.models.admin_google_sessions import AdminGoogleSession
from backend.models.audit_log import ActorType, AuditRecord, AuditRecordRead
from backend.models.backup_runs import (
    BackupConsistency,
    BackupOutcome,
    BackupRun,
    BackupRunKind,
    BackupTrigger,
)
from backend.models.crm_prospects import (
    CrmProspect,
    ProspectCreate,
    ProspectRead,
    ProspectStage,
    ProspectStageMove,
    ProspectUpdate,
)
from backend.models.dedupe_quarantine import QuarantinedDocument, QuarantineSource
from backend.models.documents import (
    DocumentRead,
    DocumentReview,
    DocumentStorage,
    DocumentType,
    KycDocument,
    VerificationStatus,
)
from backend.models.investments import (
    Investment,
    InvestmentCreate,
    InvestmentRead,
    InvestmentStatus,
    InvestmentStatusUpdate,
)
from backend.models.ledger_entries import LedgerEntry
from backend.models.locks import Lock
from backend.models.migrations import MigrationRecord
from backend.models.mt5_accounts import (
    Mt5Account,
    Mt5AccountCreate,
    Mt5AccountRead,
    Mt5AccountUpdate,
    SyncStatus,
)
from backend.models.mt5_deals import DealEntry, DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.models.schedule_items import ScheduleItem
from backend.models.sessions import Session
from backend.models.throttles import ThrottleCounter
from backend.models.users import (
    AmlDecision,
    AmlStatus,
    KycDecision,
    KycStatus,
    PasswordChange,
    ProfileUpdate,
    User,
    UserCreate,
    UserRead,
    UserType,
    UserUpdate,
)

#: The stored model of every collection that has a schema file.
STORED_MODELS: dict[str, type[StoredDocument]] = {
    model.collection_name: model
    for model in (
        User,
        Investment,
        CrmProspect,
        Mt5Account,
        Session,
        KycDocument,
        AdminGoogleSession,
        AuditRecord,
        Mt5Deal,
        Mt5EquityPoint,
        MigrationRecord,
        Lock,
        QuarantinedDocument,
        ScheduleItem,
        LedgerEntry,
        BackupRun,
        ThrottleCounter,
    )
}

__all__ = [
    "STORED_MODELS",
    "ActorType",
    "AdminGoogleSession",
    "AmlDecision",
    "AmlStatus",
    "AuditRecord",
    "AuditRecordRead",
    "BackupConsistency",
    "BackupOutcome",
    "BackupRun",
    "BackupRunKind",
    "BackupTrigger",
    "CrmProspect",
    "DealEntry",
    "DealType",
    "DocumentRead",
    "DocumentReview",
    "DocumentStorage",
    "DocumentType",
    "Investment",
    "InvestmentCreate",
    "InvestmentRead",
    "InvestmentStatus",
    "InvestmentStatusUpdate",
    "KycDecision",
    "KycDocument",
    "KycStatus",
    "LedgerEntry",
    "Lock",
    "MigrationRecord",
    "Mt5Account",
    "Mt5AccountCreate",
    "Mt5AccountRead",
    "Mt5AccountUpdate",
    "Mt5Deal",
    "Mt5EquityPoint",
    "PasswordChange",
    "ProfileUpdate",
    "ProspectCreate",
    "ProspectRead",
    "ProspectStage",
    "ProspectStageMove",
    "ProspectUpdate",
    "QuarantineSource",
    "QuarantinedDocument",
    "ScheduleItem",
    "Session",
    "StoredDocument",
    "SyncStatus",
    "ThrottleCounter",
    "User",
    "UserCreate",
    "UserRead",
    "UserType",
    "UserUpdate",
    "VerificationStatus",
]
