"""`make lifecycle` and the worker's daily pass: idempotent, audited, one at a time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from backend.models.users import KycStatus
from backend.ops.lifecycle import main as lifecycle_main
from backend.services import Services
from backend.services.contracts import LIFECYCLE_LEASE
from backend.settings import Settings
from backend.sync.scheduler import DailyLifecycle
from tests.factories import ADMIN, investment_create, make_user

Db = AsyncDatabase[dict[str, Any]]


def _run(settings: Settings) -> tuple[int, dict[str, Any]]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = lifecycle_main(["--json"], settings=settings)
    return code, json.loads(buffer.getvalue())


async def test_make_lifecycle_applies_what_is_due_once_and_then_changes_nothing(
        synced_db: Db, settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = await services.investments.create(
        investment_create(client, deposit_date=datetime.now(UTC).date() - timedelta(days=120)),
        actor=ADMIN)
    assert created.investment.status.value == "active"
    # A pass interrupted before the schedule was stored: the lifecycle pass builds it.
    stray = await services.investments.create(
        investment_create(client, principal_amount="20000.00",
                          deposit_date=datetime.now(UTC).date() - timedelta(days=3)),
        actor=ADMIN)
    await synced_db["schedule_items"].delete_many({"investment_id": stray.investment.id})

    code, first = await asyncio.to_thread(_run, settings)
    assert code == 0 and first["schedules_built"] == 13 and first["changes"] == 13
    code, second = await asyncio.to_thread(_run, settings)
    assert code == 0 and second["changes"] == 0

    held = await services.repos.locks.acquire(LIFECYCLE_LEASE, owner="someone-else",
                                              seconds=60)
    assert held
    code, skipped = await asyncio.to_thread(_run, settings)
    assert code == 1 and skipped["skipped"] is True


async def test_the_worker_runs_the_pass_once_a_day(synced_db: Db, settings: Settings) -> None:
    now = [datetime(2026, 6, 1, 9, tzinfo=UTC)]
    services = Services(synced_db, settings, clock=lambda: now[0])
    calls = []
    real = services.contracts.lifecycle

    async def counted(**kwargs: Any) -> Any:
        calls.append(now[0])
        return await real(**kwargs)

    services.contracts.lifecycle = counted  # type: ignore[method-assign]
    daily = DailyLifecycle(services.contracts, owner="worker-test")
    await daily.run_if_due()
    await daily.run_if_due()
    now[0] += timedelta(hours=12)  # 21:00 the same day
    await daily.run_if_due()
    assert len(calls) == 1
    now[0] += timedelta(hours=4)  # 01:00 the next day
    await daily.run_if_due()
    await daily.run_if_due()
    assert len(calls) == 2
