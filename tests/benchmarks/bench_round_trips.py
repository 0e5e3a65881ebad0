"""Database commands per request for the main endpoints, at 10 and at 100 rows of every kind,
side by side, through the real app (ASGI, lifespan, authentication).

The data and the calls are `tests/round_trip_support.py`'s, which `tests/test_round_trips.py`
holds every GET operation of the OpenAPI document to: the same commands at both sizes, within
each route's budget. Command counts are exact on any server; the embedded one's speed plays no
part here. A cursor's next batch (`getMore`, which a real MongoDB sends after the first 101
documents of a read) is not a command of its own here; when there is one the ratio column
says how many.
"""

from __future__ import annotations

import logging

from tests.api_support import API
from tests.benchmarks._embedded import embedded_client
from tests.benchmarks._table import Row
from tests.round_trip_support import (
    AUTH_COMMANDS,
    CALLS,
    SIZES,
    Caller,
    measure_sizes,
)

NAME = "round trips per request"
MAIN = (
    f"{API}/admin/investments",
    f"{API}/admin/users",
    f"{API}/client/investments",
    f"{API}/admin/investments/{{investment_id}}/schedule",
    f"{API}/admin/ledger",
    f"{API}/client/ledger",
    f"{API}/admin/obligations",
    f"{API}/admin/clients/{{client_id}}/statement",
    f"{API}/client/statement",
    f"{API}/client/performance",
    f"{API}/admin/funds/overview",
    f"{API}/admin/crm/prospects",
    f"{API}/admin/mt5/accounts",
    f"{API}/admin/mt5/accounts/{{account_id}}/deals",
    f"{API}/client/mt5-accounts",
    f"{API}/admin/reconciliation/breaks",
    f"{API}/admin/audit",
    "/health",
)
SIGNED_IN = (f"rows of every kind (clients, investments with their schedules and ledger, MT5 "
             f"accounts, deals, equity points, prospects, documents, sessions, audit records); "
             f"signed in: {len(AUTH_COMMANDS)} of the commands resolve the access token "
             f"(session, user), the rest are the route's")
PUBLIC = ("public: every command is the route's: ping, buildInfo, dbStats, stale MT5 "
          "accounts, the funds' coverage (4 reads), the backups (3 reads)")


async def run() -> list[Row]:
    small, large = SIZES
    # The app's warnings (the bootstrap admin created, /health degraded on the embedded
    # server) are the tests' business; the table is this benchmark's output.
    app_logger = logging.getLogger("backend")
    level = app_logger.level
    app_logger.setLevel(logging.ERROR)
    try:
        async with embedded_client() as (uri, _):
            found = await measure_sizes(uri, paths=MAIN)
    finally:
        app_logger.setLevel(level)
    rows = []
    for path in MAIN:
        call = CALLS[path]
        at_small, at_large = found[small][path], found[large][path]
        failed = [m.status for m in (at_small, at_large) if not m.ok]
        if failed:
            raise RuntimeError(f"GET {path} answered {failed}: {at_large.answer[:200]}")
        counts = (len(at_small.commands), len(at_large.commands))
        verdict = "same" if counts[0] == counts[1] else "GROWS"
        if at_small.batches or at_large.batches:
            verdict += f", getMore {at_small.batches} / {at_large.batches}"
        rows.append(Row(
            NAME, path.removeprefix(API + "/"), f"commands at {small} / {large}",
            f"{counts[0]} / {counts[1]}", verdict,
            PUBLIC if call.caller is Caller.PUBLIC else SIGNED_IN))
    return rows
