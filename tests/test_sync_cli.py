"""`make sync`: exit codes, the JSON summary, and the bridge-down line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from backend.services import Services
from backend.settings import Settings
from backend.sync.cli import main as sync_main
from tests.sync_factories import (
    approved_client,
    bridge_transport,
    down_transport,
    mapping,
    simulator,
)

LOGIN_A, LOGIN_B = 63_000_001, 63_000_002


def run_cli(settings: Settings, make_transport: Any, *argv: str) -> tuple[int, str, str]:
    """Runs in a worker thread with its own loop, as `make sync` would."""
    out, err = io.StringIO(), io.StringIO()
    transport: httpx.AsyncBaseTransport = make_transport()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sync_main(list(argv), settings=settings, transport=transport)
    return code, out.getvalue(), err.getvalue()


async def test_make_sync_exit_codes(synced_db: AsyncDatabase[dict[str, Any]],
                                    settings: Settings) -> None:
    services = Services(synced_db, settings)
    client = await approved_client(services)
    await mapping(services, client, LOGIN_A)
    crossed = await mapping(services, client, LOGIN_B, fund_code="BALANCE")
    sim = simulator()

    code, out, _ = await asyncio.to_thread(run_cli, settings, lambda: bridge_transport(sim),
                                           "--json")
    body = json.loads(out)
    assert code == 0 and body["ok"] and body["accounts"] == 2 and body["failed"] == 0
    assert body["new_deals"] == len(sim.raw_deals(LOGIN_A)) + len(sim.raw_deals(LOGIN_B))

    sim.cross_login(LOGIN_B, LOGIN_A)
    code, out, _ = await asyncio.to_thread(run_cli, settings, lambda: bridge_transport(sim),
                                           "--json")
    body = json.loads(out)
    assert code == 1 and body["failed"] == 1
    [failed] = [o for o in body["outcomes"] if o["status"] == "failed"]
    assert failed["account_id"] == crossed.account_id
    assert failed["error"].startswith("TERMINAL_LOGIN_MISMATCH:")

    code, out, err = await asyncio.to_thread(run_cli, settings, down_transport)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "BRIDGE_UNREACHABLE" in lines[0], err
    raw = await synced_db["mt5_accounts"].find_one({"mt5_login": LOGIN_A})
    assert raw is not None and raw["sync_status"] == "failed"
