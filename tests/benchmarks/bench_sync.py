"""MT5 sync: 500 simulated accounts behind 20 ms of terminal latency, fetched with concurrency
50 and 1 side by side; then the write phase on a subset, with round trips counted.

The latency is slept in every simulated terminal call, and a request makes two or three calls
(account_info, a login when the thread's session holds another account, then the read), so
one account's fetch costs roughly 100 ms of latency at concurrency 1.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pydantic import SecretStr

from backend.db.connection import CODEC_OPTIONS
from backend.models.mt5_accounts import Mt5Account, Mt5AccountCreate
from backend.services import Services
from backend.sync.job import AccountFetch, AccountStatus, SyncJob
from tests.benchmarks._embedded import embedded_client
from tests.benchmarks._table import Row
from tests.support import CommandRecorder, make_settings
from tests.sync_factories import bridge_client, bridge_transport, simulator

ACCOUNTS = 500
WRITE_SUBSET = 20
WRITE_CONCURRENCY = 4
LATENCY_SECONDS = 0.020
NAME = "mt5 sync"


def _accounts(services: Services, count: int, first_login: int) -> list[Mt5Account]:
    built = []
    for n in range(count):
        account = services.mt5.build(Mt5AccountCreate(
            account_id=f"BENCH-{n:05d}", client_id=ObjectId(), fund_code="CORE",
            mt5_login=first_login + n, broker_code="SIM", server="FidusSim-Server",
            investor_password=SecretStr("bench-investor"), currency="USD"))
        built.append(account.model_copy(update={"id": ObjectId()}))
    return built


async def _fetch_phase(job: SyncJob, accounts: list[Mt5Account]) -> tuple[float, int]:
    started = time.perf_counter()
    results = await job.fetch_all(accounts)
    elapsed = time.perf_counter() - started
    failures = [r for r in results if not isinstance(r, AccountFetch)]
    if failures:
        raise RuntimeError(f"{len(failures)} fetches failed, e.g. {failures[0]!r}")
    return elapsed, sum(len(r.deals) for r in results if isinstance(r, AccountFetch))


async def run() -> list[Row]:
    rows: list[Row] = []
    recorder = CommandRecorder()
    async with embedded_client(event_listeners=[recorder]) as (uri, client):
        db_name = f"fidus_bench_sync_{int(datetime.now(UTC).timestamp())}"
        settings = make_settings(uri, db_name, sync_concurrency=50)
        db = client.get_database(db_name, codec_options=CODEC_OPTIONS)
        services = Services(db, settings)
        sim = simulator(latency_seconds=0.0)
        accounts = _accounts(services, ACCOUNTS, 71_000_000)
        for account in accounts:
            sim.raw_deals(account.mt5_login)  # generate the histories before timing
        sim.latency_seconds = LATENCY_SECONDS

        now = datetime.now(UTC)
        steady = [a.model_copy(update={"deals_synced_to": now - timedelta(minutes=5)})
                  for a in accounts]
        cases = (("first sync: full 30-day history", accounts),
                 ("steady state: deals since the last sync", steady))
        async with bridge_client(bridge_transport(sim)) as bridge:
            for case, batch in cases:
                timings = {}
                for concurrency in (50, 1):
                    job = SyncJob(db, settings, bridge, concurrency=concurrency)
                    timings[concurrency], deals = await _fetch_phase(job, batch)
                speedup = timings[1] / timings[50]
                for concurrency in (50, 1):
                    rows.append(Row(
                        NAME, f"fetch {ACCOUNTS} accounts, {case}, concurrency {concurrency}",
                        "fetch phase (bridge in-process, 20 ms per terminal call)",
                        f"{timings[concurrency]:.2f} s",
                        f"{speedup:.1f}x faster" if concurrency == 50 else "1.0x",
                        f"{deals} deals; {ACCOUNTS / timings[concurrency]:.0f} accounts/s"
                        + ("; target >= 10x" if concurrency == 50 else "")))

        async with bridge_client(bridge_transport(sim)) as bridge:
            from backend.db import index_sync
            await index_sync.apply(db, await index_sync.plan(db))
            subset = accounts[:WRITE_SUBSET]
            await db["mt5_accounts"].insert_many(
                [services.mt5.repo.prepare(a) for a in subset])
            # The embedded server drops connections under 50 concurrent writers, so the write
            # phase runs a few accounts at a time there.
            job = SyncJob(db, settings, bridge, concurrency=WRITE_CONCURRENCY)
            passes = []
            for label in ("first sync (full history)", "second sync (nothing new)"):
                recorder.reset()
                started = time.perf_counter()
                report = await job.run_once()
                elapsed = time.perf_counter() - started
                assert report.count(AccountStatus.OK) == WRITE_SUBSET, report.failed[:1]
                commands = recorder.count()
                passes.append((label, elapsed, commands, report))
            for label, elapsed, commands, report in passes:
                per_account = (commands - 1) / WRITE_SUBSET
                write_seconds = sum(o.write_seconds for o in report.outcomes)
                rows.append(Row(
                    NAME, f"{label}, {WRITE_SUBSET} accounts",
                    "database round trips per account",
                    f"{per_account:g}", "",
                    f"{commands} commands = 1 account query + {WRITE_SUBSET} x {per_account:g} "
                    f"(lease, renew, deals bulk upsert if any, equity upsert, investments "
                    f"read, one update per investment carried (none here), account update, "
                    f"release); {report.new_deals} new deals"))
                embedded_note = (
                    "EMBEDDED development server (slow at size; a real MongoDB is not): not a "
                    f"figure of the product; write phase on a {WRITE_SUBSET}-account subset, "
                    f"concurrency {WRITE_CONCURRENCY}")
                rows.append(Row(NAME, f"{label}, {WRITE_SUBSET} accounts", "pass wall time",
                                f"{elapsed:.2f} s", "", embedded_note))
                rows.append(Row(NAME, f"{label}, {WRITE_SUBSET} accounts",
                                "write time per account",
                                f"{write_seconds / WRITE_SUBSET * 1000:.0f} ms", "", embedded_note))
    return rows
