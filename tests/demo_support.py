"""The demo seed with one sync pass over its MT5 accounts, for the valuation and reporting
tests."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

from backend.api.deps import services_for
from backend.ops.seed import seed
from backend.services import Services
from backend.sync.job import SyncJob
from mt5_bridge_service import SimulatedTerminal
from tests.sync_factories import bridge_client, bridge_transport


async def seeded_and_synced(app: FastAPI, directory: Path) -> Services:
    """The demo seed in the app's database, and one sync pass whose simulated MT5 deposits
    equal its investments."""
    services = services_for(app)
    database = app.state.connection.database
    report = await seed(database, app.state.settings, state="demo")
    deposits = directory / "deposits.json"
    deposits.write_text(json.dumps({str(k): str(v) for k, v in report.mt5_deposits.items()}),
                        encoding="utf-8")
    async with bridge_client(bridge_transport(SimulatedTerminal(
            7, deposits_file=deposits))) as bridge:
        synced = await SyncJob(database, app.state.settings, bridge).run_once()
    assert {o.status.value for o in synced.outcomes} == {"ok"}
    return services
