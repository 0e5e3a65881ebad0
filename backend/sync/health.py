"""The sync's contribution to `/health`: active accounts with no successful sync for
`sync_stale_after_minutes` make the service "degraded", listed by account id."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from backend.db.connection import ConnectionManager, DegradedCheck
from backend.db.types import Database
from backend.repositories.base import Clock, utcnow
from backend.repositories.mt5_accounts import Mt5AccountRepository
from backend.security.crypto import FieldCipher
from backend.settings import Settings

#: Beyond this many, the reason names the first ones and how many more there are.
LISTED_ACCOUNTS = 20


def stale_accounts_check(settings: Settings, *, clock: Clock = utcnow) -> DegradedCheck:
    cipher = FieldCipher.from_settings(settings)
    minutes = settings.sync_stale_after_minutes

    async def stale_mt5_accounts(db: Database) -> list[str]:
        repo = Mt5AccountRepository(db, cipher=cipher, clock=clock)
        stale = await repo.stale(older_than=clock() - timedelta(minutes=minutes))
        if not stale:
            return []
        ids = [str(raw["account_id"]) for raw in stale]
        listed = ", ".join(ids[:LISTED_ACCOUNTS])
        more = f" and {len(ids) - LISTED_ACCOUNTS} more" if len(ids) > LISTED_ACCOUNTS else ""
        return [f"{len(ids)} MT5 account(s) with no successful sync for {minutes} minutes: "
                f"{listed}{more}"]

    return stale_mt5_accounts


def register_sync_health(manager: ConnectionManager, settings: Settings) -> None:
    manager.degraded_checks.append(stale_accounts_check(settings))


async def sync_health_startup_step(app: FastAPI, manager: ConnectionManager) -> None:
    """A start-up step for `backend.api.app.default_startup_steps()`."""
    register_sync_health(manager, manager.settings)
