"""The audit relay's timer: in the API process (the lifespan's background task) and in the
worker (beside the sync passes). A record whose fast path failed reaches audit_log without
anyone calling the relay by hand, and a database outage never ends the timer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from backend.api.app import create_app
from backend.errors import DatabaseUnavailable
from backend.models.crm_prospects import CrmProspect, ProspectStage
from backend.repositories.base import utcnow
from backend.services import Services
from backend.services.audit import AuditTrail, relay_forever
from backend.settings import Settings
from backend.sync.job import SyncReport
from backend.sync.scheduler import StopSignal, run_forever
from tests.api_support import MovableClock, api_settings, install_clock, services
from tests.factories import ADMIN

#: How long a test waits for the timer to do its work before it calls the outcome missing.
PATIENCE_SECONDS = 30


def _prospect(n: int) -> CrmProspect:
    now = utcnow()
    return CrmProspect(name=f"Prospect {n}", email=f"prospect{n}@fidus.example",
                       stage=ProspectStage.LEAD, stage_changed_at=now, created_at=now,
                       updated_at=now, version=1)


async def _left_in_outbox(services: Services, n: int) -> CrmProspect:
    """A prospect stored with its audit record, whose fast path never ran (as when the
    database failed right after the insert)."""
    return await services.audit.create(services.repos.prospects, _prospect(n), actor=ADMIN,
                                       action="prospect.create", entity_type="prospect",
                                       deliver=False)


async def _copied(services: Services, entity_id: str) -> int:
    page = await services.audit.search(entity_type="prospect", entity_id=entity_id)
    return page.total


async def _wait_until_copied(services: Services, entity_id: str) -> int:
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        if await _copied(services, entity_id):
            break
        await asyncio.sleep(0.05)
    return await _copied(services, entity_id)


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, audit_relay_interval_seconds=0.05)


@pytest.fixture
async def app(settings: Settings, mongo_client: AsyncMongoClient[dict[str, Any]],
              db_name: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings, configure_logs=False)
    async with LifespanManager(application):
        yield application
    await mongo_client.drop_database(db_name)


async def test_the_api_process_relays_a_record_left_in_an_outbox(app: FastAPI) -> None:
    clock = install_clock(app)
    prospect = await _left_in_outbox(services(app), 1)
    assert await _copied(services(app), str(prospect.id)) == 0
    # Past the grace period, the timer takes it.
    clock.advance(seconds=11)
    assert await _wait_until_copied(services(app), str(prospect.id)) == 1
    stored = await services(app).repos.prospects.pending_audit(document_id=prospect.id)
    assert stored == []


async def test_the_api_process_leaves_a_fresh_record_to_its_own_fast_path(app: FastAPI) -> None:
    """Within the grace period the timer does not touch a record: the operation that wrote it
    may still be completing its other steps."""
    prospect = await _left_in_outbox(services(app), 2)
    # Several timer ticks pass; the record is still where it was written.
    for _ in range(5):
        await services(app).audit.relay_due()
        await asyncio.sleep(0.06)
    assert await _copied(services(app), str(prospect.id)) == 0
    assert len(await services(app).repos.prospects.pending_audit(document_id=prospect.id)) == 1


class _FlakyTrail(AuditTrail):
    """Down for its first passes, then up; stops the timer after `passes_wanted` good ones."""

    def __init__(self, trail: AuditTrail, *, failures: int, stop: asyncio.Event) -> None:
        super().__init__(trail.log, clock=trail.clock)
        self.watch(*trail.audited)
        self.failures = failures
        self.stop = stop

    async def relay_due(self) -> int:
        if self.failures:
            self.failures -= 1
            if self.failures % 2:
                raise DatabaseUnavailable("the database is unavailable")
            raise RuntimeError("something nobody foresaw")
        copied = await super().relay_due()
        self.stop.set()
        return copied


async def test_the_timer_outlives_database_outages_and_surprises(
    synced_db: Any, settings: Settings,
) -> None:
    services = Services(synced_db, settings)
    stop = asyncio.Event()
    trail = _FlakyTrail(services.audit, failures=4, stop=stop)
    passes = await asyncio.wait_for(
        relay_forever(trail, interval_seconds=0.01, stop=stop), timeout=PATIENCE_SECONDS)
    assert passes == 1 and trail.failures == 0


async def test_the_worker_runs_the_relay_beside_its_passes(
    synced_db: Any, settings: Settings,
) -> None:
    clock = MovableClock()
    services = Services(synced_db, settings, clock=clock)
    prospect = await _left_in_outbox(services, 3)
    clock.advance(seconds=11)
    passes_done = asyncio.Event()

    async def idle_pass() -> SyncReport:
        if await _copied(services, str(prospect.id)):
            passes_done.set()
        return SyncReport(started_at=utcnow())

    async def relay(stop_event: asyncio.Event) -> int:
        return await relay_forever(services.audit, interval_seconds=0.01, stop=stop_event)

    with StopSignal() as stop:
        async def stop_when_copied() -> None:
            await passes_done.wait()
            stop.trigger()

        stopper = asyncio.create_task(stop_when_copied())
        await asyncio.wait_for(
            run_forever(idle_pass, interval_seconds=0.01, stop=stop, alongside=relay),
            timeout=PATIENCE_SECONDS)
        await stopper
    assert await _copied(services, str(prospect.id)) == 1

