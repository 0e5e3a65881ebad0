"""MT5 sync: passes over the active account mappings, leases, the worker loop and health."""

from backend.sync.health import register_sync_health, stale_accounts_check, sync_health_startup_step
from backend.sync.job import AccountOutcome, AccountStatus, SyncJob, SyncReport

__all__ = [
    "AccountOutcome",
    "AccountStatus",
    "SyncJob",
    "SyncReport",
    "register_sync_health",
    "stale_accounts_check",
    "sync_health_startup_step",
]
